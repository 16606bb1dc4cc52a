"""The fence: every private Faust / mode / aiokafka / rocksdict symbol dqhash relies on is used here, and only here.

``symbols.py`` lists each one (what it is, why dqhash needs it, what breaks if it changes);
``tests/unit/internals/test_symbols.py`` checks that each exists with the expected shape in the installed versions,
so an upgrade fails loudly in one place.
"""
