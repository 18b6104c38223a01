# The first course document's Keras program, line for line, with only its imports changed
# (sklearn's load_digits and Keras' models, layers and optimizers come from lamina):
#
#   import numpy as np
#   from sklearn.datasets import load_digits
#   from keras.models import Sequential
#   from keras.layers import Dense
#   from keras.optimizers import SGD
#
# Below the course's lines, as in examples/digits_mlp.cpp: the model trains on 80 % of the digits
# (train_test_split with a fixed random_state) and prints its accuracy on the other 20 %, which it
# never saw. The course's program trains on all of them and prints nothing after fit.
#
# Run: PYTHONPATH=build/python python3 examples/python/digits_mlp.py [--check]
#   (the digits come from data/digits, see scripts/fetch-data.sh digits, or are fetched by
#   lamina.datasets.load_digits). --check (ctest python.example_digits): quiet, and exits 1 when
#   the test accuracy is under 0.88, the C++ example's figure.
import sys

import numpy as np
from lamina.datasets import load_digits, train_test_split
from lamina.models import Sequential
from lamina.layers import Dense
from lamina.optimizers import SGD
from lamina.utils import set_random_seed

check = "--check" in sys.argv[1:]
set_random_seed(1)  # the C++ example's manual_seed(1): the same weights every run

# 加载数据
digits = load_digits()
X = digits.data
y = digits.target

# 数据预处理
X = X / np.max(X)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=1)

# 初始化模型
model = Sequential()
model.add(Dense(64, input_dim=64, activation='relu'))
model.add(Dense(10, activation='softmax'))

# 初始化优化器
optimizer = SGD(lr=0.01, momentum=0.9)

# 编译模型
model.compile(loss='sparse_categorical_crossentropy', optimizer=optimizer, metrics=['accuracy'])

# 训练模型
model.fit(X_train, y_train, epochs=10, batch_size=128, verbose=0 if check else 'auto')

loss, accuracy = model.evaluate(X_test, y_test, verbose=0)
print(f"test accuracy: {accuracy:.4f} on {len(X_test)} digits")
if check and accuracy < 0.88:
    sys.exit(f"digits_mlp: test accuracy {accuracy:.4f} is under 0.88")
