package safetensors

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rws-project/rws/tensor"
)

// TestNumpyReadsRWSFiles writes one tensor per writable dtype with rws and has NumPy read the
// file from the raw layout (scripts/check_numpy_read.py). It skips when python3-numpy is missing;
// .ci/run installs it.
func TestNumpyReadsRWSFiles(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
		t.Skip("needs /usr/bin/python3 with numpy (apt-get install python3-numpy)")
	}
	vals := []float32{0, -1.5, 1.0 / 3, 65504, float32(math.Inf(1)), 1e-7}
	dir := t.TempDir()
	expect := map[string]any{}
	var ts []Tensor
	for _, d := range []tensor.DType{tensor.F64, tensor.F32, tensor.F16, tensor.BF16} {
		data := make([]byte, len(vals)*d.Size())
		if err := tensor.EncodeFloat32(d, vals, data); err != nil {
			t.Fatal(err)
		}
		back := make([]float64, len(vals))
		tensor.DecodeFloat64(d, data, back)
		name := "layer." + string(d)
		ts = append(ts, Tensor{Name: name, DType: d, Shape: []int64{2, 3}, Data: data})
		expect[name] = map[string]any{"dtype": string(d), "shape": []int{2, 3}, "values": back}
	}
	ints := []byte{1, 0, 255, 7}
	ts = append(ts, Tensor{Name: "u8", DType: tensor.U8, Shape: []int64{4}, Data: ints})
	expect["u8"] = map[string]any{"dtype": "U8", "shape": []int{4}, "values": []float64{1, 0, 255, 7}}
	meta := map[string]string{"format": "pt", "rws.note": "ünïcode ok"}
	path := filepath.Join(dir, "w.safetensors")
	if err := WriteFile(path, ts, meta, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// JSON has no Inf: encode it as 1e999, which Python's json reads as inf.
	b, err := json.Marshal(map[string]any{"metadata": meta, "tensors": expectInf(expect)})
	if err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(dir, "expected.json")
	os.WriteFile(exp, b, 0o644)
	out, err := exec.Command("/usr/bin/python3", "../scripts/check_numpy_read.py", path, exp).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy check failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

type jsonInf float64

func (v jsonInf) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(v), 1) {
		return []byte("1e999"), nil
	}
	return json.Marshal(float64(v))
}

func expectInf(m map[string]any) map[string]any {
	for _, e := range m {
		em := e.(map[string]any)
		if vs, ok := em["values"].([]float64); ok {
			out := make([]jsonInf, len(vs))
			for i, v := range vs {
				out[i] = jsonInf(v)
			}
			em["values"] = out
		}
	}
	return m
}
