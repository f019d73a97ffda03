package nn

import (
	"context"
	"testing"
)

// TestTrainSmoke trains each architecture for 25 steps on one batch of 16 random 8×8 images with
// random labels and checks that it starts to fit them: the loss falls by 5 % (measured: cnn and
// resnet20 fall much further; VGG without batch norm starts slowly, 2.30 → 2.09 for vgg11).
func TestTrainSmoke(t *testing.T) {
	im, labels := randomImages(16, 8, 8, 3, 21)
	for _, arch := range Archs() {
		t.Run(arch, func(t *testing.T) {
			m, err := New(arch, Config{3, 8, 8, 10}, 1)
			if err != nil {
				t.Fatal(err)
			}
			r := DefaultRecipe(25)
			r.Optimizer, r.LR, r.WeightDecay, r.Batch = Adam, 3e-4, 0, 16
			stats, err := Train(context.Background(), m, im, labels, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			first, last := stats[0].Loss, stats[len(stats)-1].Loss
			t.Logf("loss %.3f → %.3f, accuracy %.2f", first, last, stats[len(stats)-1].Accuracy)
			if !(last < 0.95*first) {
				t.Errorf("loss %.3f → %.3f: did not fall by 5 %%", first, last)
			}
		})
	}
}
