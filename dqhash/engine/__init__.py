"""The reconciler: one worker's partitions, topic → parse → table → reconcile → outputs.

Works over small ports (``ports``): no Faust, mode, aiokafka, rocksdict, cassandra-driver or DataDog here.
"""
