package signature

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/rws-project/rws/internal/kernel"
	"github.com/rws-project/rws/internal/mem"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// FormatName is the value of the "format" metadata key of a signature file.
const FormatName = "rws.signature"

// Versions of the signature file format this package reads; it writes Version, or StatsVersion
// for a signature that carries running statistics (Signature.Stats), which version 1 cannot.
const (
	MinVersion   = 1
	MaxVersion   = 2
	Version      = 1
	StatsVersion = 2
)

// Metadata keys of a signature file (see the package documentation).
const (
	keyFormat      = "format"
	keyVersion     = "rws.signature.version"
	keyName        = "rws.signature.name"
	keyVariant     = "rws.signature.variant"
	keyCodec       = "rws.signature.codec"
	keyBits        = "rws.signature.bits"
	keyGranularity = "rws.signature.granularity"
	keyLayers      = "rws.signature.layers"
	keySelection   = "rws.signature.selection"
	keyTensors     = "rws.signature.tensors"
	keySources     = "rws.signature.sources"
	keyCommand     = "rws.signature.command"
	keyModelBytes  = "rws.signature.model_bytes"
	keyFileBytes   = "rws.signature.file_bytes"
	keyRatio       = "rws.signature.compression_ratio"
)

// Suffixes of the stored tensors of a quantized signature tensor; ':' never occurs in PyTorch
// parameter names.
const (
	codesSuffix  = ":codes"
	paramsSuffix = ":params"
)

// Variant says how a signature was computed.
type Variant string

// The variants. Projection is RWS_c = d_c − (⟨d_c,a⟩/⟨a,a⟩)·a with d_c = θ_c − θ₀ and
// a = θ_std − θ₀ (d_c itself when a = 0); Difference, used without θ₀, is θ_c − θ_std.
const (
	Projection Variant = "projection"
	Difference Variant = "difference"
)

// ErrFormat is matched (errors.Is) by every error about a file that is not a valid signature.
var ErrFormat = errors.New("invalid signature file")

// FormatError reports a signature file that cannot be used: what is wrong and where.
type FormatError struct {
	Path   string
	Detail string
	Err    error // the underlying error, if any
}

// Error describes the problem with the path.
func (e *FormatError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: invalid signature file: %s: %v", e.Path, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s: invalid signature file: %s", e.Path, e.Detail)
}

// Is matches ErrFormat.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// Unwrap returns the underlying error.
func (e *FormatError) Unwrap() error { return e.Err }

// Fingerprints are the hex SHA-256 digests of one tensor's raw bytes in each source checkpoint.
type Fingerprints struct {
	Init   string   `json:"init,omitempty"`
	Clean  string   `json:"clean"`
	Robust []string `json:"robust"`
}

// Tensor is one tensor of a signature.
type Tensor struct {
	// Name is the model tensor the values apply to, e.g. "features.0.weight".
	Name string `json:"name"`
	// Shape is the model tensor's shape.
	Shape []int64 `json:"shape"`
	// DType is the clean model's type for the tensor; codec none stores the values in it.
	DType tensor.DType `json:"dtype"`
	// Groups is the number of quantization parameter groups: 1, or Shape[0] per channel.
	Groups int `json:"groups"`
	// Sources fingerprints the tensor in the checkpoints the signature came from.
	Sources Fingerprints `json:"source_sha256"`
	// SHA256 is the hex digest of the stored bytes (codes then parameters, or the raw values).
	SHA256 string `json:"sha256"`
	// Norm is the L2 norm of the signature values before quantization.
	Norm float64 `json:"norm"`
	// MaxError is the largest |x − x̂| quantization left, RelError the relative L2 error
	// ‖x − x̂‖/‖x‖ (0 when x = 0); both 0 for codec none with an F32 source.
	MaxError float64 `json:"max_error"`
	RelError float64 `json:"rel_error"`

	q      *quant.Tensor // the codes, or nil for codec none
	raw    []byte        // codec none: the values in DType
	values []float32     // decoded values, cached by Values
}

// Elements is the number of values of t.
func (t *Tensor) Elements() int64 { return tensor.Elements(t.Shape) }

// StoredBytes is the number of data bytes t takes in the file.
func (t *Tensor) StoredBytes() int64 {
	if t.q != nil {
		return t.q.Size()
	}
	return int64(len(t.raw))
}

// Values decodes the signature values of t. The slice is shared: callers must not modify it.
func (t *Tensor) Values() ([]float32, error) {
	if t.values != nil {
		return t.values, nil
	}
	out, err := t.decode()
	if err != nil {
		return nil, err
	}
	t.values = out
	return out, nil
}

func (t *Tensor) decode() ([]float32, error) {
	if out := kernel.AlignedFloat32s(t.raw); t.q == nil && t.DType == tensor.F32 && out != nil {
		// Stored float32 values are used where they lie: copying a large signature into fresh
		// memory costs more than reading it.
		if i := firstNonFinite(out); i >= 0 {
			return nil, fmt.Errorf("signature: tensor %q: value %d is %v", t.Name, i, out[i])
		}
		return out, nil
	}
	out := make([]float32, t.Elements())
	if t.q != nil {
		if err := t.q.Decode(out); err != nil {
			return nil, fmt.Errorf("signature: tensor %q: %w", t.Name, err)
		}
		return out, nil
	}
	if err := tensor.DecodeFloat32(t.DType, t.raw, out); err != nil {
		return nil, fmt.Errorf("signature: tensor %q: %w", t.Name, err)
	}
	if i := firstNonFinite(out); i >= 0 {
		return nil, fmt.Errorf("signature: tensor %q: value %d is %v", t.Name, i, out[i])
	}
	return out, nil
}

// firstNonFinite is the index of the first NaN or ±Inf in xs, or −1.
func firstNonFinite(xs []float32) int {
	// An all-ones exponent is a NaN or an infinity: adding one to the exponent then carries into
	// bit 31. Testing a block at a time keeps the loop free of branches.
	const exp, one = 0x7f800000, 0x00800000
	for lo := 0; lo < len(xs); lo += 256 {
		blk := xs[lo:min(lo+256, len(xs))]
		var hit uint32
		for _, v := range blk {
			hit |= (math.Float32bits(v)&exp + one) >> 31
		}
		if hit != 0 {
			for i, v := range blk {
				if math.Float32bits(v)&exp == exp {
					return lo + i
				}
			}
		}
	}
	return -1
}

// storedSHA256 hashes what t stores in the file.
func (t *Tensor) storedSHA256() string {
	h := sha256.New()
	if t.q != nil {
		h.Write(t.q.Codes)
		var b [4]byte
		for _, p := range t.q.Params {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(p))
			h.Write(b[:])
		}
	} else {
		h.Write(t.raw)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Sources names the checkpoints a signature was extracted from (as given on the command line).
type Sources struct {
	Init   string   `json:"init,omitempty"`
	Clean  string   `json:"clean"`
	Robust []string `json:"robust"`
}

// Signature is a robust weight signature: values for some tensors of a model, with how they were
// made. Read loads one from a file; Extract computes one.
type Signature struct {
	Name        string
	Variant     Variant
	Spec        quant.Spec
	Granularity quant.Granularity
	// Layers are the module names the signature covers, from the input.
	Layers []string
	// Selection says how the layers were chosen, in words (e.g. "first 6 weight layers").
	Selection string
	Tensors   []*Tensor
	Sources   Sources
	// Stats are the robust models' batch-norm running statistics of the signature's layers,
	// carried for patching with SignatureStats; nil unless extracted with them.
	Stats []*RunningStat
	// Command is the command line that extracted the signature.
	Command string
	// ModelBytes is the size of the full clean model as a float32 checkpoint: its file size with
	// every floating-point tensor counted at 4 bytes per value.
	ModelBytes int64
	// FileBytes is the size of the signature file; set by Read and Write.
	FileBytes int64
	// Version is the file format version read or written (see fileVersion).
	Version int
	// Path is the file the signature was read from or written to.
	Path string
	// FileSHA256 is the hex SHA-256 of the whole file; set by Read and Write.
	FileSHA256 string
}

// Ratio returns ModelBytes / FileBytes, the compression against the full float32 model, or 0
// when either is unknown.
func (s *Signature) Ratio() float64 {
	if s.ModelBytes <= 0 || s.FileBytes <= 0 {
		return 0
	}
	return float64(s.ModelBytes) / float64(s.FileBytes)
}

// Tensor returns the signature tensor for the model tensor name, or nil.
func (s *Signature) Tensor(name string) *Tensor {
	for _, t := range s.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Elements is the total number of signature values.
func (s *Signature) Elements() int64 {
	var n int64
	for _, t := range s.Tensors {
		n += t.Elements()
	}
	return n
}

// WriteOptions controls Write.
type WriteOptions struct {
	// Force replaces an existing file.
	Force bool
}

// stored returns the safetensors tensors that hold s's data, in file order.
func (s *Signature) stored() []safetensors.Tensor {
	var out []safetensors.Tensor
	for _, t := range s.Tensors {
		if t.q == nil {
			out = append(out, safetensors.Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: t.raw})
			continue
		}
		out = append(out, safetensors.Tensor{Name: t.Name + codesSuffix, DType: tensor.U8,
			Shape: []int64{int64(len(t.q.Codes))}, Data: t.q.Codes})
		params := make([]byte, 4*len(t.q.Params))
		for i, p := range t.q.Params {
			binary.LittleEndian.PutUint32(params[4*i:], math.Float32bits(p))
		}
		out = append(out, safetensors.Tensor{Name: t.Name + paramsSuffix, DType: tensor.F32,
			Shape: []int64{int64(t.q.Groups), int64(s.Spec.ParamsPerGroup())}, Data: params})
	}
	return append(out, s.storedStats()...)
}

// metadata returns the __metadata__ of s's file, with the given file size and ratio.
func (s *Signature) metadata(fileBytes int64) (map[string]string, error) {
	layers, err := json.Marshal(s.Layers)
	if err != nil {
		return nil, err
	}
	ts, err := json.Marshal(s.Tensors)
	if err != nil {
		return nil, err
	}
	src, err := json.Marshal(s.Sources)
	if err != nil {
		return nil, err
	}
	m := map[string]string{
		keyFormat:      FormatName,
		keyVersion:     strconv.Itoa(s.fileVersion()),
		keyName:        s.Name,
		keyVariant:     string(s.Variant),
		keyCodec:       string(s.Spec.Codec),
		keyBits:        strconv.Itoa(s.Spec.CodeBits()),
		keyGranularity: string(s.Granularity),
		keyLayers:      string(layers),
		keySelection:   s.Selection,
		keyTensors:     string(ts),
		keySources:     string(src),
		keyCommand:     s.Command,
		keyModelBytes:  strconv.FormatInt(s.ModelBytes, 10),
		keyFileBytes:   strconv.FormatInt(fileBytes, 10),
	}
	if len(s.Stats) > 0 {
		m[keyBNStats] = marshal(s.Stats)
	}
	if s.ModelBytes > 0 && fileBytes > 0 {
		m[keyRatio] = strconv.FormatFloat(float64(s.ModelBytes)/float64(fileBytes), 'f', 2, 64)
	}
	return m, nil
}

// Write stores s at path as a signature file (atomically; an existing file needs opts.Force) and
// sets s.FileBytes and s.Path. The file records its own size and the compression ratio.
func (s *Signature) Write(path string, opts WriteOptions) error {
	// Hash the tensors on all cores: hashing is most of the work of writing a large signature.
	each(context.Background(), len(s.Tensors), func(i int) int64 { return s.Tensors[i].StoredBytes() }, func(i int) error {
		s.Tensors[i].SHA256 = s.Tensors[i].storedSHA256()
		return nil
	})
	ts := s.stored()
	infos := make([]safetensors.Info, len(ts))
	var data int64
	for i, t := range ts {
		infos[i] = t.Info()
		data += int64(len(t.Data))
	}
	// The metadata holds the file size, which depends on the metadata: iterate to the fixed point
	// (the size changes by a few digits at most, so this settles in two or three rounds).
	size := data
	var meta map[string]string
	var hdr []byte
	for range 8 {
		m, err := s.metadata(size)
		if err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		if hdr, err = safetensors.EncodeHeader(infos, m); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		meta = m
		if next := int64(len(hdr)) + data; next != size {
			size = next
			continue
		}
		break
	}
	// The file holds hdr, then the tensors' data in order (safetensors.WriteFile): hash those
	// bytes from memory while they are written and synced, rather than reading the file back.
	sum := make(chan string, 1)
	go func() {
		h := sha256.New()
		h.Write(hdr)
		for _, t := range ts {
			h.Write(t.Data)
		}
		sum <- hex.EncodeToString(h.Sum(nil))
	}()
	err := safetensors.WriteFile(path, ts, meta, safetensors.WriteOptions{Force: opts.Force})
	fileSum := <-sum
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	s.FileBytes = size
	s.Path = path
	s.Version = s.fileVersion()
	s.FileSHA256 = fileSum
	return nil
}

// IsSignature reports whether metadata belongs to a signature file.
func IsSignature(meta map[string]string) bool { return meta[keyFormat] == FormatName }

// Read loads and checks the signature file at path: format and version, every stored tensor
// (running statistics included) present with the declared type and shape and matching its
// SHA-256, and codes that decode. Every problem is a *FormatError (matching ErrFormat). The file
// is read once, into memory that the signature's tensors then use.
func Read(path string) (*Signature, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, &FormatError{Path: path, Detail: "not a readable safetensors file", Err: err}
	}
	// The whole file is hashed on another core while the tensors are checked.
	var fileSum string
	hashed := make(chan struct{})
	go func() {
		fileSum = hexSHA256(data)
		close(hashed)
	}()
	defer func() { <-hashed }()
	infos, meta, err := safetensors.Parse(path, data)
	if err != nil {
		return nil, &FormatError{Path: path, Detail: "not a readable safetensors file", Err: err}
	}
	r := &stored{data: data, infos: map[string]safetensors.Info{}}
	for _, in := range infos {
		r.infos[in.Name] = in
	}
	bad := func(format string, args ...any) error {
		return &FormatError{Path: path, Detail: fmt.Sprintf(format, args...)}
	}
	if meta[keyFormat] != FormatName {
		return nil, bad("metadata format is %q, want %q (is this a model rather than a signature?)", meta[keyFormat], FormatName)
	}
	ver, err := strconv.Atoi(meta[keyVersion])
	if err != nil || ver < MinVersion || ver > MaxVersion {
		return nil, bad("version %q is not supported (this rws reads versions %d to %d)", meta[keyVersion], MinVersion, MaxVersion)
	}
	s := &Signature{
		Name:        meta[keyName],
		Variant:     Variant(meta[keyVariant]),
		Granularity: quant.Granularity(meta[keyGranularity]),
		Selection:   meta[keySelection],
		Command:     meta[keyCommand],
		Version:     ver,
		Path:        path,
		FileBytes:   int64(len(data)),
	}
	if s.Variant != Projection && s.Variant != Difference {
		return nil, bad("unknown variant %q", s.Variant)
	}
	codec, err := quant.ParseCodec(meta[keyCodec])
	if err != nil {
		return nil, &FormatError{Path: path, Detail: "codec", Err: err}
	}
	bits, err := strconv.Atoi(meta[keyBits])
	if err != nil {
		return nil, bad("bits %q is not a number", meta[keyBits])
	}
	s.Spec = quant.Spec{Codec: codec, Bits: bits}
	if codec == quant.None {
		s.Spec.Bits = 0
	}
	if err := s.Spec.Validate(); err != nil {
		return nil, &FormatError{Path: path, Detail: "codec", Err: err}
	}
	if _, err := quant.ParseGranularity(string(s.Granularity)); err != nil {
		return nil, &FormatError{Path: path, Detail: "granularity", Err: err}
	}
	if err := json.Unmarshal([]byte(meta[keyLayers]), &s.Layers); err != nil {
		return nil, bad("metadata %s is not a JSON array of names: %v", keyLayers, err)
	}
	if err := json.Unmarshal([]byte(meta[keySources]), &s.Sources); err != nil {
		return nil, bad("metadata %s: %v", keySources, err)
	}
	if err := json.Unmarshal([]byte(meta[keyTensors]), &s.Tensors); err != nil {
		return nil, bad("metadata %s: %v", keyTensors, err)
	}
	if len(s.Tensors) == 0 {
		return nil, bad("no tensors")
	}
	if s.ModelBytes, err = strconv.ParseInt(meta[keyModelBytes], 10, 64); err != nil {
		return nil, bad("metadata %s %q is not a number", keyModelBytes, meta[keyModelBytes])
	}
	want := map[string]bool{}
	seen := map[string]bool{}
	for _, t := range s.Tensors {
		if seen[t.Name] {
			return nil, bad("tensor %q listed twice", t.Name)
		}
		seen[t.Name] = true
		if err := s.load(r, t, want); err != nil {
			return nil, &FormatError{Path: path, Detail: fmt.Sprintf("tensor %q", t.Name), Err: err}
		}
	}
	if err := s.loadStats(r, meta, ver, want, seen); err != nil {
		return nil, err
	}
	for _, in := range infos {
		if !want[in.Name] {
			return nil, bad("stored tensor %q is not listed in the metadata", in.Name)
		}
	}
	<-hashed
	s.FileSHA256 = fileSum
	return s, nil
}

// readFile returns the content of the file at path, in memory from mem.Bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data := mem.Bytes(int(st.Size()))
	if _, err := f.ReadAt(data, 0); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%s became shorter while it was read", path)
		}
		return nil, err
	}
	return data, nil
}

// stored is a signature file's tensors, in memory.
type stored struct {
	data  []byte
	infos map[string]safetensors.Info
}

// Info describes the stored tensor name.
func (r *stored) Info(name string) (safetensors.Info, bool) {
	in, ok := r.infos[name]
	return in, ok
}

// ReadRaw returns the stored bytes of the tensor name (a view of the file's memory).
func (r *stored) ReadRaw(name string) ([]byte, error) {
	in, ok := r.infos[name]
	if !ok {
		return nil, fmt.Errorf("stored tensor %q is missing", name)
	}
	return r.data[in.Offset : in.Offset+in.Size : in.Offset+in.Size], nil
}

// load reads t's stored data from r, checks it and marks the stored names in want.
func (s *Signature) load(r *stored, t *Tensor, want map[string]bool) error {
	n := t.Elements()
	if t.Name == "" || strings.Contains(t.Name, ":") {
		return fmt.Errorf("bad tensor name")
	}
	if n < 0 || n > math.MaxInt32*8 {
		return fmt.Errorf("bad shape %v", t.Shape)
	}
	get := func(name string, dt tensor.DType, shape []int64) ([]byte, error) {
		want[name] = true
		in, ok := r.Info(name)
		if !ok {
			return nil, fmt.Errorf("stored tensor %q is missing", name)
		}
		if in.DType != dt || fmt.Sprint(in.Shape) != fmt.Sprint(shape) {
			return nil, fmt.Errorf("stored tensor %q is %s %v, want %s %v", name, in.DType, in.Shape, dt, shape)
		}
		return r.ReadRaw(name)
	}
	if s.Spec.Codec == quant.None {
		if !t.DType.Writable() {
			return fmt.Errorf("dtype %q cannot hold signature values (want F32, F16, BF16 or F64)", t.DType)
		}
		raw, err := get(t.Name, t.DType, t.Shape)
		if err != nil {
			return err
		}
		t.raw = raw
	} else {
		if t.Groups < 1 || n%int64(t.Groups) != 0 {
			return fmt.Errorf("%d groups do not divide %d values", t.Groups, n)
		}
		codes, err := get(t.Name+codesSuffix, tensor.U8, []int64{int64(quant.PackedLen(int(n), s.Spec.Bits))})
		if err != nil {
			return err
		}
		pp := s.Spec.ParamsPerGroup()
		raw, err := get(t.Name+paramsSuffix, tensor.F32, []int64{int64(t.Groups), int64(pp)})
		if err != nil {
			return err
		}
		params := make([]float32, len(raw)/4)
		for i := range params {
			params[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		t.q = &quant.Tensor{Spec: s.Spec, Len: int(n), Groups: t.Groups, Codes: codes, Params: params}
	}
	if got := t.storedSHA256(); got != t.SHA256 {
		return fmt.Errorf("stored bytes do not match their SHA-256 (the file is corrupted)")
	}
	if t.q != nil {
		if err := t.q.Validate(); err != nil {
			return err
		}
	} else if _, err := t.Values(); err != nil {
		return err
	}
	return nil
}
