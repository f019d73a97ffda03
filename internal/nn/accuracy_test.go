package nn

import (
	"context"
	"os"
	"testing"

	"github.com/rws-project/rws/dataset"
)

// mnistRecipe is the recipe of the accuracy tests and rws train's default: Adam, learning rate
// 2e-3 with cosine decay over the epochs, batch 128, no weight decay.
func mnistRecipe(epochs int) Recipe {
	r := DefaultRecipe(epochs)
	r.Optimizer, r.LR, r.WeightDecay, r.Schedule, r.Seed = Adam, 2e-3, 0, Cosine, 1
	return r
}

// trainEval trains a fresh cnn on the training images and returns the test accuracy.
func trainEval(t *testing.T, train Images, tl []int, test Images, el []int, r Recipe) float64 {
	t.Helper()
	m, err := New("cnn", Config{InChannels: train.C, Height: train.H, Width: train.W, Classes: 10}, 1)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := Train(context.Background(), m, train, tl, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		t.Logf("epoch %d: loss %.4f train accuracy %.4f, %.0f examples/s", s.Epoch+1, s.Loss, s.Accuracy, s.ExamplesPerSec)
	}
	res, err := Evaluate(context.Background(), m, test, el)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test accuracy %.4f (%d/%d)", res.Accuracy, res.Correct, res.N)
	return res.Accuracy
}

// TestMNISTShort trains cnn for two epochs on the first 4000 MNIST training images (64
// steps; 0.93 measured); the full run is TestMNIST (RWS_LONG_TESTS).
func TestMNISTShort(t *testing.T) {
	train, tl := loadSet(t, "mnist", dataset.Train, 4000)
	test, el := loadSet(t, "mnist", dataset.Test, 1000)
	if acc := trainEval(t, train, tl, test, el, mnistRecipe(2)); acc < 0.85 {
		t.Errorf("test accuracy %.4f < 0.85 after two epochs on 4000 images", acc)
	}
}

// TestMNIST is the bar: cnn on MNIST reaches 99.0 % test accuracy within 3 epochs.
func TestMNIST(t *testing.T) {
	if os.Getenv("RWS_LONG_TESTS") == "" {
		t.Skip("set RWS_LONG_TESTS=1 for the 3-epoch MNIST run (minutes)")
	}
	train, tl := loadSet(t, "mnist", dataset.Train, 0)
	test, el := loadSet(t, "mnist", dataset.Test, 0)
	if acc := trainEval(t, train, tl, test, el, mnistRecipe(3)); acc < 0.99 {
		t.Errorf("test accuracy %.4f < 0.99 after 3 epochs", acc)
	}
}

// TestFashionMNIST is the second bar: cnn on Fashion-MNIST reaches 90 % test accuracy.
func TestFashionMNIST(t *testing.T) {
	if os.Getenv("RWS_LONG_TESTS") == "" {
		t.Skip("set RWS_LONG_TESTS=1 for the Fashion-MNIST run (minutes)")
	}
	train, tl := loadSet(t, "fashion-mnist", dataset.Train, 0)
	test, el := loadSet(t, "fashion-mnist", dataset.Test, 0)
	if acc := trainEval(t, train, tl, test, el, mnistRecipe(5)); acc < 0.90 {
		t.Errorf("test accuracy %.4f < 0.90 after 5 epochs", acc)
	}
}
