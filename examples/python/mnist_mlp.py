# The second course document's TensorFlow program, line for line, with only its imports changed:
#
#   import tensorflow as tf
#   from tensorflow.keras import layers
#
# `tf.keras` is lamina.keras (the lamina package under Keras' name), so tf.keras.datasets.mnist,
# tf.keras.Sequential and tf.keras.losses are Lamina's. It mirrors examples/mnist_mlp.cpp.
#
# Run: PYTHONPATH=build/python python3 examples/python/mnist_mlp.py
#   (MNIST comes from data/mnist, see scripts/fetch-data.sh mnist, or is fetched by
#   lamina.datasets.mnist.load_data into ~/.lamina/datasets)
import lamina as tf
from lamina.keras import layers

mnist = tf.keras.datasets.mnist
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train, x_test = x_train / 255.0, x_test / 255.0

model = tf.keras.Sequential([
    layers.Flatten(input_shape=(28, 28)),
    layers.Dense(128, activation='relu'),
    layers.Dense(10)
])

model.compile(optimizer='adam',
              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=['accuracy'])

model.fit(x_train, y_train, epochs=5)
model.evaluate(x_test, y_test, verbose=2)
