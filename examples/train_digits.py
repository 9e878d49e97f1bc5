"""Train a small CNN on scikit-learn's 8x8 handwritten digits with cyconv and NumPy only.

    python examples/train_digits.py [--epochs 15] [--seed 0] [--batch-size 32] [--lr 0.002] [--quiet]

scikit-learn only loads the data (1797 images, 8x8 pixels, values 0..16) and makes a fixed
stratified 80/20 train/test split. Every forward and backward pass is NumPy + cyconv; the
optimiser (Adam) is written out below. The network, NHWC throughout:

    x        (N, 8, 8, 1)   standardised pixels
    conv1    (N, 8, 8, 32)  3x3 SAME, 32 filters, then ReLU
    pool1    (N, 4, 4, 32)  2x2 max pooling
    conv2    (N, 4, 4, 64)  3x3 SAME, 64 filters, then ReLU
    pool2    (N, 2, 2, 64)  2x2 max pooling
    flatten  (N, 256)
    dense    (N, 10)        logits -> softmax cross-entropy

21,386 parameters in all.

The same --seed gives the same weights, the same batch order and so the same accuracy. The last
line printed is always `test accuracy XX.X % (N images), T.T s`.
"""
import argparse
import sys
import time

import numpy as np

from cyconv import Convolution

N_CLASSES = 10


# --------------------------------------------------------------------------------------- layers


class Relu:
    """max(x, 0), elementwise; any shape."""

    def forward(self, x):
        self._mask = x > 0
        return x * self._mask

    def backward(self, grad_y):
        return grad_y * self._mask


class MaxPool2x2:
    """2x2 max pooling with stride 2: (N, H, W, C) -> (N, H/2, W/2, C); H and W must be even."""

    def forward(self, x):
        n, h, w, c = x.shape
        windows = x.reshape(n, h // 2, 2, w // 2, 2, c)
        y = windows.max(axis=(2, 4))
        # One-hot mask of the winner in each window (the first one on ties), for backward.
        flat = windows.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)
        winner = flat.argmax(axis=-1)
        self._mask = np.arange(4) == winner[..., None]  # (N, H/2, W/2, C, 4)
        self._shape = x.shape
        return y

    def backward(self, grad_y):
        n, h, w, c = self._shape
        grad = self._mask * grad_y[..., None]  # (N, H/2, W/2, C, 4)
        grad = grad.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
        return grad.reshape(n, h, w, c)


class Flatten:
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_y):
        return grad_y.reshape(self._shape)


class Dense:
    """y = x @ weight + bias: x (N, D) -> y (N, K); weight (D, K) Glorot-uniform, bias (K,) zeros.

    backward(grad_y) -> grad_x (N, D) and sets weight_grad (D, K), bias_grad (K,)."""

    def __init__(self, n_in, n_out, rng):
        limit = np.sqrt(6.0 / (n_in + n_out))
        self.weight = rng.uniform(-limit, limit, size=(n_in, n_out))
        self.bias = np.zeros(n_out)

    def forward(self, x):
        self._x = x
        return x @ self.weight + self.bias

    def backward(self, grad_y):
        self.weight_grad = self._x.T @ grad_y
        self.bias_grad = grad_y.sum(axis=0)
        return grad_y @ self.weight.T


class ConvLayer:
    """A cyconv Convolution (NHWC) with the forward / backward interface of the layers above.

    kernel (F, kh, kw, C) and bias (F,) live in the cyconv layer; so do kernel_grad and bias_grad
    after backward."""

    def __init__(self, input_shape, filters, kernel_size, seed):
        self.conv = Convolution(input_shape, filters, kernel_size, padding="SAME", seed=seed)

    def forward(self, x):
        return self.conv(x)

    def backward(self, grad_y):
        return self.conv.backward(grad_y)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels.

    logits (N, K), labels (N,) in [0, K) -> (loss: float, grad_logits: (N, K) = dloss/dlogits)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -log_probs[np.arange(n), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1.0
    return loss, grad / n


# ---------------------------------------------------------------------------------- the network


class Network:
    """The CNN of the module docstring: x (N, 8, 8, 1) -> logits (N, 10)."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        conv_seeds = rng.integers(2**32, size=2)
        self.conv1 = ConvLayer((1, 8, 8, 1), 32, 3, seed=conv_seeds[0])
        self.conv2 = ConvLayer((1, 4, 4, 32), 64, 3, seed=conv_seeds[1])
        self.dense = Dense(2 * 2 * 64, N_CLASSES, rng)
        self.layers = [self.conv1, Relu(), MaxPool2x2(),
                       self.conv2, Relu(), MaxPool2x2(),
                       Flatten(), self.dense]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_logits):
        for layer in reversed(self.layers):
            grad_logits = layer.backward(grad_logits)

    def parameters(self):
        """(owner, name) for every trainable array: owner.name is the array, owner.name_grad its gradient."""
        return [(self.conv1.conv, "kernel"), (self.conv1.conv, "bias"),
                (self.conv2.conv, "kernel"), (self.conv2.conv, "bias"),
                (self.dense, "weight"), (self.dense, "bias")]

    def predict(self, x, batch_size=512):
        """Class indices (N,) for x (N, 8, 8, 1)."""
        return np.concatenate([self.forward(x[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(x), batch_size)])


class Adam:
    """Adam (Kingma & Ba) over (owner, name) parameters; step() reads owner.<name>_grad.

    Parameters are updated by assignment (owner.name = new), which cyconv's Convolution accepts."""

    def __init__(self, params, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.m = [np.zeros_like(getattr(owner, name)) for owner, name in params]
        self.v = [np.zeros_like(getattr(owner, name)) for owner, name in params]
        self.t = 0

    def step(self):
        self.t += 1
        correction = np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        for (owner, name), m, v in zip(self.params, self.m, self.v):
            grad = getattr(owner, name + "_grad")
            m *= self.beta1
            m += (1 - self.beta1) * grad
            v *= self.beta2
            v += (1 - self.beta2) * grad * grad
            value = getattr(owner, name)
            setattr(owner, name, value - self.lr * correction * m / (np.sqrt(v) + self.eps))


# ------------------------------------------------------------------------------ data and training


def load_data(seed=0):
    """Fixed stratified 80/20 split of sklearn's digits, standardised with the training mean/std.

    Returns x_train (1437, 8, 8, 1), y_train (1437,), x_test (360, 8, 8, 1), y_test (360,).
    The split does not depend on the training seed, so every seed is scored on the same 360 images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float64)[..., None]  # (1797, 8, 8, 1), values 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, stratify=digits.target, random_state=seed
    )
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def progress_bar(epoch, epochs, done, total, loss, width=30, stream=sys.stdout):
    """Redraw `epoch 3/15 [#########.....]  640/1437 loss 0.123` in place with a carriage return."""
    filled = width * done // total
    stream.write(f"\repoch {epoch:>{len(str(epochs))}}/{epochs} [{'#' * filled}{'.' * (width - filled)}] "
                 f"{done:>{len(str(total))}}/{total} loss {loss:.4f}")
    stream.flush()


def train(epochs=15, seed=0, batch_size=32, lr=2e-3, verbose=True):
    """Train from scratch; returns (test accuracy in [0, 1], number of test images, seconds)."""
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = load_data()
    net = Network(seed)
    optimiser = Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng([seed, 1])  # batch order, independent of the weight draws
    n = len(x_train)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        total_loss = 0.0
        for lo in range(0, n, batch_size):
            batch = order[lo:lo + batch_size]
            loss, grad = softmax_cross_entropy(net.forward(x_train[batch]), y_train[batch])
            net.backward(grad)
            optimiser.step()
            total_loss += loss * len(batch)
            if verbose:
                progress_bar(epoch, epochs, min(lo + batch_size, n), n, total_loss / min(lo + batch_size, n))
        if verbose:
            train_acc = (net.predict(x_train) == y_train).mean()
            print(f"  train accuracy {100 * train_acc:.1f} %", flush=True)
    accuracy = (net.predict(x_test) == y_test).mean()
    return accuracy, len(y_test), time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="passes over the training set (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="weights and batch order (default 0)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 0.002)")
    parser.add_argument("--quiet", action="store_true", help="print only the final line")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be >= 1")
    accuracy, n_test, seconds = train(args.epochs, args.seed, args.batch_size, args.lr, verbose=not args.quiet)
    print(f"test accuracy {100 * accuracy:.1f} % ({n_test} images), {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
