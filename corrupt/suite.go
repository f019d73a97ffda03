package corrupt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Func corrupts img (values on the 0..1 scale) at severity, drawing every random number from rng,
// and returns a new image of the same shape, never img itself or an image it keeps (Batch recycles
// results). opt carries settings that are not part of the suite, such as the frost textures; it
// is never nil. A Func must be safe for concurrent use and must not keep img.
type Func func(img Image, severity int, rng *rand.Rand, opt *Options) (Image, error)

// Corruption is one corruption of a suite.
type Corruption struct {
	// Name is the corruption's name in the reference, e.g. "gaussian_noise".
	Name string
	// Severities lists the accepted severities in order: 1..5 for the ImageNet-C family, the one
	// reference severity for MNIST-C.
	Severities []int
	// Random is false when the output depends only on the image (then rng is not used).
	Random bool
	// Apply computes the corruption.
	Apply Func
}

// Options are settings of a corruption run that are not part of a suite's definition.
type Options struct {
	// Frost is the set of frost textures; nil means ProceduralTextures().
	Frost *Textures
}

// frost returns the textures to use: o.Frost, or the procedural set when it is nil or empty.
func (o *Options) frost() *Textures {
	if o == nil || o.Frost == nil || o.Frost.n == 0 {
		return ProceduralTextures()
	}
	return o.Frost
}

// Suite is a named list of corruptions with one rule for converting results to bytes. Suites are
// created with NewSuite and made available by name with Register; the package registers
// "cifar10-c" and "imagenet-c". A Suite is safe for concurrent use.
type Suite struct {
	name     string
	quantize Quantize
	minSide  int
	list     []Corruption
	index    map[string]int
	opts     Options
}

// NewSuite returns a suite called name whose results are converted to bytes with q and whose
// images must be at least minSide pixels high and wide. The corruptions keep their order; names
// must be unique and non-empty, and each needs at least one severity and an Apply function.
func NewSuite(name string, q Quantize, minSide int, corruptions []Corruption) (*Suite, error) {
	if name == "" {
		return nil, errors.New("corrupt: suite with an empty name")
	}
	s := &Suite{name: name, quantize: q, minSide: max(minSide, 1), index: map[string]int{}}
	for _, c := range corruptions {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("corrupt: suite %q: corruption with an empty name", name)
		case len(c.Severities) == 0:
			return nil, fmt.Errorf("corrupt: suite %q: corruption %q has no severity", name, c.Name)
		case c.Apply == nil:
			return nil, fmt.Errorf("corrupt: suite %q: corruption %q has no Apply function", name, c.Name)
		}
		if _, dup := s.index[c.Name]; dup {
			return nil, fmt.Errorf("corrupt: suite %q: corruption %q listed twice", name, c.Name)
		}
		c.Severities = slices.Clone(c.Severities)
		s.index[c.Name] = len(s.list)
		s.list = append(s.list, c)
	}
	return s, nil
}

// ErrUnknown is returned (wrapped) for a suite, corruption or severity that does not exist.
var ErrUnknown = errors.New("unknown")

var (
	registryMu sync.RWMutex
	registry   = map[string]*Suite{}
)

// Register makes s available to Lookup under its name. It fails if that name is taken.
func Register(s *Suite) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[s.name]; dup {
		return fmt.Errorf("corrupt: suite %q registered twice", s.name)
	}
	registry[s.name] = s
	return nil
}

// mustRegister registers a suite built by this package; a failure is a programming error.
func mustRegister(s *Suite, err error) {
	if err == nil {
		err = Register(s)
	}
	if err != nil {
		panic(err)
	}
}

// Lookup returns the registered suite called name ("cifar10-c", "imagenet-c", …).
func Lookup(name string) (*Suite, error) {
	registryMu.RLock()
	s, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("corrupt: suite %q: %w suite (have %s)", name, ErrUnknown, strings.Join(SuiteNames(), ", "))
	}
	return s, nil
}

// SuiteNames returns the names of the registered suites, sorted.
func SuiteNames() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Name returns the suite's name.
func (s *Suite) Name() string { return s.name }

// Quantize returns the suite's rule for converting results to bytes.
func (s *Suite) Quantize() Quantize { return s.quantize }

// MinSide returns the smallest height and width the suite accepts.
func (s *Suite) MinSide() int { return s.minSide }

// Corruptions returns the names of the suite's corruptions in the suite's order.
func (s *Suite) Corruptions() []string {
	names := make([]string, len(s.list))
	for i, c := range s.list {
		names[i] = c.Name
	}
	return names
}

// Corruption returns the corruption called name.
func (s *Suite) Corruption(name string) (Corruption, bool) {
	i, ok := s.index[name]
	if !ok {
		return Corruption{}, false
	}
	c := s.list[i]
	c.Severities = slices.Clone(c.Severities)
	return c, true
}

// Severities returns the severities of the corruption called name, or nil if there is none.
func (s *Suite) Severities(name string) []int {
	c, ok := s.Corruption(name)
	if !ok {
		return nil
	}
	return c.Severities
}

// WithOptions returns a copy of s that runs with opt (for example user-supplied frost textures).
func (s *Suite) WithOptions(opt Options) *Suite {
	c := *s
	c.opts = opt
	return &c
}

// Options returns the options s runs with.
func (s *Suite) Options() Options { return s.opts }

// lookup returns the corruption called name and checks severity.
func (s *Suite) lookup(name string, severity int) (Corruption, error) {
	i, ok := s.index[name]
	if !ok {
		return Corruption{}, fmt.Errorf("corrupt: suite %q has no corruption %q: %w corruption (have %s)",
			s.name, name, ErrUnknown, strings.Join(s.Corruptions(), ", "))
	}
	c := s.list[i]
	if !slices.Contains(c.Severities, severity) {
		want := make([]string, len(c.Severities))
		for j, v := range c.Severities {
			want[j] = strconv.Itoa(v)
		}
		return Corruption{}, fmt.Errorf("corrupt: %s %q: %w severity %d (want one of %s)",
			s.name, name, ErrUnknown, severity, strings.Join(want, ", "))
	}
	return c, nil
}

// checkImage reports whether img is an image s accepts.
func (s *Suite) checkImage(img Image) error {
	if err := img.valid(); err != nil {
		return err
	}
	return s.checkSize(img.H, img.W)
}

// checkSize reports whether s accepts images of h rows and w columns.
func (s *Suite) checkSize(h, w int) error {
	if h < s.minSide || w < s.minSide {
		return fmt.Errorf("corrupt: suite %q: image size %dx%d is below the minimum %dx%d",
			s.name, h, w, s.minSide, s.minSide)
	}
	return nil
}

// Apply corrupts img with the corruption called name at severity, drawing random numbers from
// rng (see NewRand for the streams datasets use; deterministic corruptions accept nil). The
// result is a new image holding the reference's values before its uint8 conversion; convert it
// with s.Quantize().
func (s *Suite) Apply(name string, severity int, img Image, rng *rand.Rand) (Image, error) {
	c, err := s.lookup(name, severity)
	if err != nil {
		return Image{}, err
	}
	if err := s.checkImage(img); err != nil {
		return Image{}, err
	}
	if rng == nil && c.Random {
		return Image{}, fmt.Errorf("corrupt: %s %q is random: pass a random stream (NewRand), not nil", s.name, name)
	}
	opt := s.opts
	out, err := c.Apply(img, severity, rng, &opt)
	if err != nil {
		return Image{}, fmt.Errorf("corrupt: %s %q severity %d: %w", s.name, name, severity, err)
	}
	return out, nil
}
