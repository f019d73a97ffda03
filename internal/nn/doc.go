// Package nn is rws's engine for image classifiers: layers with forward and backward passes,
// the model zoo (cnn, vgg11, vgg16, resnet20) named and laid out like PyTorch state_dicts,
// training (SGD with momentum and Nesterov, Adam; constant, step and cosine schedules; seeded
// shuffling, random crop and flip), evaluation, per-parameter gradients, batch-norm
// re-estimation, and safetensors checkpoints that carry their architecture in metadata.
//
// The rest of rws sees plain Go types: Images (uint8 N×H×W×C), labels as []int, state_dicts as
// named float32 Tensors, logits as []float32 [N, classes].
//
//	m, err := nn.New("cnn", nn.Config{InChannels: 1, Height: 28, Width: 28, Classes: 10}, seed)
//	stats, err := nn.Train(ctx, m, images, labels, nn.DefaultRecipe(3), progress)
//	res, err := nn.Evaluate(ctx, m, testImages, testLabels) // res.Accuracy, res.Logits
//	err = m.Save("model.safetensors", false)
//	m, err = nn.LoadCheckpoint("model.safetensors")          // rebuilt from its metadata
//	loss, grads, err := nn.Gradients(ctx, m, images, labels) // d(mean cross-entropy)/dθ
//	err = nn.Recalibrate(ctx, m, calibrationImages)          // batch-norm statistics
//
// Activations are float32 in NCHW order. Convolutions unfold each example (im2col) and call
// SGEMM from package blas (OpenBLAS through cgo, or gonum's pure-Go BLAS with the noopenblas
// build tag or without cgo). The forward pass of 3×3 stride-1 convolutions with enough input
// channels uses Winograd F(2×2, 3×3) instead (winograd.go): 16 products of channel matrices,
// with AVX2 transforms on amd64 (build tag purego: Go). The engine spreads examples, channels
// and elements over GOMAXPROCS goroutines and runs OpenBLAS single-threaded inside each; ReLU
// and max-pool after a convolution run fused into it, on each example's output while it is in
// cache.
//
// Numerical parity with PyTorch 1.13 is tested against golden vectors made by
// scripts/gen_nn_golden.py (every layer and every model, forward and backward, within 1e-4 of
// the largest value), by finite differences, and by scripts/check_torch_logits.py for
// checkpoints trained here. Results are deterministic for a given seed and GOMAXPROCS.
//
// A Model is not safe for concurrent use; use one per goroutine (Clone).
package nn
