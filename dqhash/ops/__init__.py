"""Operating dqhash: DogStatsD metrics, the logic of the inspection views, the dashboard page."""
