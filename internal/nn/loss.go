package nn

import "math"

// crossEntropy is torch.nn.CrossEntropyLoss (mean over the batch) of logits [n, k] against
// labels. It returns the loss, the number of examples whose largest logit is the label, and
// writes the gradient of the loss with respect to the logits into grad when grad is not nil.
func crossEntropy(logits []float32, labels []int, k int, grad []float32) (loss float64, correct int) {
	n := len(labels)
	for i, y := range labels {
		row := logits[i*k : (i+1)*k]
		best, mx := 0, row[0]
		for j, v := range row {
			if v > mx {
				best, mx = j, v
			}
		}
		if best == y {
			correct++
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v - mx))
		}
		lse := float64(mx) + math.Log(s)
		loss += lse - float64(row[y])
		if grad != nil {
			g := grad[i*k : (i+1)*k]
			for j, v := range row {
				g[j] = float32(math.Exp(float64(v)-lse) / float64(n))
			}
			g[y] -= float32(1 / float64(n))
		}
	}
	return loss / float64(n), correct
}

// Predictions returns the predicted class of each row of logits [n, k]: the index of the largest
// logit, the first on ties, as Evaluate counts accuracy.
func Predictions(logits []float32, k int) []int {
	out := make([]int, len(logits)/max(k, 1))
	for i := range out {
		out[i] = argmax(logits[i*k : (i+1)*k])
	}
	return out
}

// argmax returns the index of the largest value (the first one on ties).
func argmax(row []float32) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
}
