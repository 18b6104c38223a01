"""Keras' datasets: ``(x_train, y_train), (x_test, y_test) = lamina.datasets.mnist.load_data()``."""
