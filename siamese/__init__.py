"""sigverify: the Siamese signature network, its preprocessing, training and evaluation."""
