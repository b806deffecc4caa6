"""The classic first deep-learning program, with pynn in place of tf.keras.

    python examples/mnist_mlp.py [--epochs 5] [--out DIR]

Trains the 784-128-10 MLP on MNIST when its files are found (see pynn.datasets for where it
looks) or can be downloaded; otherwise on Fashion-MNIST (Debian: apt-get install
dataset-fashion-mnist), saying so. Then writes three PNG files (training curves, a 5x5 grid of
test predictions with mistakes in red, the confusion matrix) and the trained model, and checks
that the saved model predicts exactly what the trained one does.
"""
import argparse
import os

import numpy as np
import pynn
import pynn.plot
from _args import positive_int

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=positive_int, default=5)
parser.add_argument("--out", default=".", help="folder for the PNG files and the model file")
args = parser.parse_args()

# -- the data: MNIST if we can get it, else Fashion-MNIST ----------------------------------------
try:
    mnist = pynn.datasets.mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    dataset, class_names = "MNIST", [str(d) for d in range(10)]
except pynn.datasets.DatasetNotFoundError as err:
    print("MNIST is not available here:\n  " + str(err).replace("\n", "\n  "))
    print("=> Training on Fashion-MNIST instead (same shapes, 10 classes of clothing).\n")
    fashion = pynn.datasets.fashion_mnist
    (x_train, y_train), (x_test, y_test) = fashion.load_data()
    dataset, class_names = "Fashion-MNIST", list(fashion.CLASS_NAMES)
print(f"{dataset}: {len(x_train)} training and {len(x_test)} test images of "
      f"{x_train.shape[1]}x{x_train.shape[2]} pixels")

# -- the program, as every course writes it ------------------------------------------------------
x_train, x_test = x_train / 255.0, x_test / 255.0
model = pynn.Sequential([
    pynn.layers.Flatten(input_shape=(28, 28)),
    pynn.layers.Dense(128, activation='relu'),
    pynn.layers.Dropout(0.2),
    pynn.layers.Dense(10, activation='softmax')
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
history = model.fit(x_train, y_train, epochs=args.epochs)
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
print('\nTest accuracy:', test_acc)
predictions = model.predict(x_test)
predicted_labels = np.argmax(predictions, axis=1)

# -- the plots, as PNG files ---------------------------------------------------------------------
os.makedirs(args.out, exist_ok=True)
stem = os.path.join(args.out, "mnist_mlp")
pynn.plot.plot_history(history, path=stem + "_history.png",
                       title=f"{dataset}: training curves")
pynn.plot.plot_predictions(x_test, y_test, predictions, class_names,
                           path=stem + "_predictions.png",
                           title=f"{dataset} test images: predicted (true); mistakes in red")
pynn.plot.plot_confusion_matrix(y_test, predicted_labels, class_names,
                                path=stem + "_confusion.png",
                                title=f"{dataset}: test accuracy {test_acc:.4f}")

# -- save, load, and check the copy predicts the same ----------------------------------------------
model.save(stem + ".pynn")
restored = pynn.models.load_model(stem + ".pynn")
same = np.array_equal(restored.predict(x_test, verbose=0), predictions)
print(f"\nWrote {stem}_history.png, {stem}_predictions.png, {stem}_confusion.png and the "
      f"model {stem}.pynn (reloaded copy predicts identically: {same})")
