package layer

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

func names(ls []Layer) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

func shapeOf(shapes map[string][]int64) Shape {
	return func(n string) []int64 { return shapes[n] }
}

func TestOrder(t *testing.T) {
	// torchvision vgg11 state_dict keys, as a safetensors writer sorts them.
	vgg := []string{"classifier.0.bias", "classifier.0.weight", "classifier.3.weight", "classifier.3.bias",
		"classifier.6.weight", "classifier.6.bias", "features.0.bias", "features.0.weight", "features.10.weight",
		"features.10.bias", "features.3.weight", "features.3.bias"}
	// torchvision resnet (first block, BasicBlock with downsample), sorted.
	resnet := []string{"bn1.bias", "bn1.num_batches_tracked", "bn1.running_mean", "bn1.running_var", "bn1.weight",
		"conv1.weight", "fc.bias", "fc.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn2.weight",
		"layer1.0.conv1.weight", "layer1.0.conv2.weight", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight",
		"layer10.0.conv1.weight", "layer2.0.conv1.weight"}
	sort.Strings(resnet)
	tests := []struct {
		name    string
		tensors []string
		meta    map[string]string
		stated  []string
		want    []string
	}{
		{"vgg natural", vgg, nil, nil, []string{"features.0", "features.3", "features.10", "classifier.0", "classifier.3", "classifier.6"}},
		{"resnet natural", resnet, nil, nil, []string{"conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2",
			"layer1.0.bn2", "layer1.0.downsample.0", "layer1.0.downsample.1", "layer2.0.conv1", "layer10.0.conv1", "fc"}},
		{"recorded by rws", []string{"b.weight", "a.weight", "c.weight"}, map[string]string{MetaModules: `["c","a","b"]`}, nil,
			[]string{"c", "a", "b"}},
		{"stated wins, unlisted follow", []string{"b.weight", "a.weight", "c.weight"}, map[string]string{MetaModules: `["c","a","b"]`},
			[]string{"b"}, []string{"b", "a", "c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := Order(tc.tensors, tc.meta, tc.stated, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(ls); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("order\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestKindsAndHead(t *testing.T) {
	shapes := map[string][]int64{
		"features.0.weight": {32, 1, 3, 3}, "features.0.bias": {32},
		"features.1.weight": {32}, "features.1.bias": {32}, "features.1.running_mean": {32}, "features.1.running_var": {32},
		"classifier.0.weight": {128, 512}, "classifier.0.bias": {128},
		"classifier.2.weight": {10, 128}, "classifier.2.bias": {10},
	}
	var ns []string
	for n := range shapes {
		ns = append(ns, n)
	}
	ls, err := Order(ns, nil, nil, shapeOf(shapes))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		kind Kind
		head bool
	}{{"features.0", Conv, false}, {"features.1", Norm, false}, {"classifier.0", Linear, false}, {"classifier.2", Linear, true}}
	for i, w := range want {
		l := ls[i]
		if l.Name != w.name || l.Kind != w.kind || l.Head != w.head {
			t.Errorf("layer %d = %s %s head=%v, want %s %s head=%v", i, l.Name, l.Kind, l.Head, w.name, w.kind, w.head)
		}
	}
	if got := strings.Join(ls[1].Tensors, ","); got != "features.1.weight,features.1.bias,features.1.running_mean,features.1.running_var" {
		t.Errorf("tensor order in a layer: %s", got)
	}
}

func TestBadRecordedOrder(t *testing.T) {
	if _, err := Order([]string{"a.weight"}, map[string]string{MetaModules: "not json"}, nil, nil); err == nil {
		t.Error("a malformed rws.modules was accepted")
	}
}
