"""`scaleout replay`: run a recorded flow across replicas and name the state one replica keeps."""
