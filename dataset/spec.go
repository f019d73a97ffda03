package dataset

import (
	"fmt"
	"strconv"
	"strings"
)

// Spec is a parsed dataset spec; see the package documentation for the syntax.
type Spec struct {
	// Kind is the format: mnist, fashion-mnist, idx, cifar10, cifar100, cifar10c, cifar100c,
	// mnistc, folder or npy.
	Kind string
	// Path is the folder or file; empty for the built-in MNIST and the default Fashion-MNIST.
	Path string
	// Labels is the label file of idx and npy specs, or empty.
	Labels string
	// Corruption names the corruption of cifar10c, cifar100c and mnistc specs.
	Corruption string
	// Severity is 1 to 5 for one severity of cifar10c and cifar100c, or 0 for all five.
	Severity int
	// Coarse selects the 20 CIFAR-100 superclasses instead of the 100 classes.
	Coarse bool
}

// Kinds lists the spec kinds, for help texts.
var Kinds = []string{"mnist", "fashion-mnist", "idx", "cifar10", "cifar100", "cifar10c", "cifar100c", "mnistc", "folder", "npy"}

// SpecSyntax is a one-line summary of the spec syntax, for help texts.
const SpecSyntax = "mnist | fashion-mnist[:DIR] | idx:IMAGES[,LABELS] | cifar10:DIR | cifar100:DIR[,coarse] | " +
	"cifar10c:DIR,CORRUPTION[,SEVERITY] | cifar100c:DIR,CORRUPTION[,SEVERITY] | mnistc:DIR,CORRUPTION | folder:DIR | npy:IMAGES[,LABELS]"

// ParseSpec parses a dataset spec such as "mnist", "cifar10:/data/cifar" or "npy:x.npy,y.npy".
func ParseSpec(s string) (Spec, error) {
	kind, rest, hasRest := strings.Cut(s, ":")
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("dataset: spec %q: %s", s, fmt.Sprintf(format, args...))
	}
	var fields []string
	if hasRest {
		if rest == "" {
			return bad("empty path after %q", kind+":")
		}
		fields = strings.Split(rest, ",")
		for _, f := range fields {
			if f == "" {
				return bad("empty field (fields are separated by ',')")
			}
		}
	}
	sp := Spec{Kind: kind}
	nfields := func(min, max int, syntax string) error {
		if len(fields) < min || len(fields) > max {
			return fmt.Errorf("dataset: spec %q: want %s", s, syntax)
		}
		return nil
	}
	var err error
	switch kind {
	case "mnist", "fashion-mnist":
		err = nfields(0, 1, kind+" or "+kind+":DIR")
	case "idx", "npy":
		err = nfields(1, 2, kind+":IMAGES[,LABELS]")
		if err == nil && len(fields) == 2 {
			sp.Labels = fields[1]
		}
	case "cifar10", "folder":
		err = nfields(1, 1, kind+":DIR")
	case "cifar100":
		err = nfields(1, 2, "cifar100:DIR or cifar100:DIR,coarse")
		if err == nil && len(fields) == 2 {
			if fields[1] != "coarse" {
				return bad("unknown option %q (want coarse)", fields[1])
			}
			sp.Coarse = true
		}
	case "cifar10c", "cifar100c":
		err = nfields(1, 3, kind+":DIR,CORRUPTION[,SEVERITY]")
		if err == nil && len(fields) >= 2 {
			sp.Corruption = fields[1]
		}
		if err == nil && len(fields) == 3 {
			sev, perr := strconv.Atoi(fields[2])
			if perr != nil || sev < 1 || sev > 5 {
				return bad("severity %q is not 1 to 5", fields[2])
			}
			sp.Severity = sev
		}
	case "mnistc":
		err = nfields(1, 2, "mnistc:DIR,CORRUPTION")
		if err == nil && len(fields) == 2 {
			sp.Corruption = fields[1]
		}
	default:
		return bad("unknown dataset kind %q (want one of: %s)", kind, strings.Join(Kinds, ", "))
	}
	if err != nil {
		return Spec{}, err
	}
	if len(fields) > 0 {
		sp.Path = fields[0]
	}
	return sp, nil
}

// String returns the spec in the syntax ParseSpec reads.
func (sp Spec) String() string {
	f := []string{}
	if sp.Path != "" {
		f = append(f, sp.Path)
	}
	if sp.Labels != "" {
		f = append(f, sp.Labels)
	}
	if sp.Corruption != "" {
		f = append(f, sp.Corruption)
	}
	if sp.Severity != 0 {
		f = append(f, strconv.Itoa(sp.Severity))
	}
	if sp.Coarse {
		f = append(f, "coarse")
	}
	if len(f) == 0 {
		return sp.Kind
	}
	return sp.Kind + ":" + strings.Join(f, ",")
}

// Open parses spec and loads the split of the dataset it names.
func Open(spec string, split Split) (*Set, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return sp.Open(split)
}

// Open loads the split of the dataset sp names.
func (sp Spec) Open(split Split) (*Set, error) {
	if _, err := ParseSplit(string(split)); err != nil {
		return nil, err
	}
	var (
		s   *Set
		err error
	)
	switch sp.Kind {
	case "mnist":
		if sp.Path == "" {
			s, err = embeddedMNIST(split)
		} else {
			s, err = loadIDXDir(sp.Path, split, "mnist", digitNames, "")
		}
	case "fashion-mnist":
		path := sp.Path
		hint := ""
		if path == "" {
			path = FashionMNISTDir
			hint = "install it with 'apt-get install dataset-fashion-mnist', or name its folder: fashion-mnist:DIR"
		}
		s, err = loadIDXDir(path, split, "fashion-mnist", fashionNames, hint)
	case "idx":
		s, err = loadIDXPair(sp.Path, sp.Labels, "idx:"+sp.Path)
	case "cifar10":
		s, err = loadCIFAR10(sp.Path, split)
	case "cifar100":
		s, err = loadCIFAR100(sp.Path, split, sp.Coarse)
	case "cifar10c", "cifar100c":
		s, err = loadCIFARC(sp, split)
	case "mnistc":
		s, err = loadMNISTC(sp, split)
	case "folder":
		s, err = loadFolder(sp.Path, split)
	case "npy":
		s, err = loadNPY(sp.Path, sp.Labels)
	default:
		return nil, fmt.Errorf("dataset: unknown dataset kind %q (want one of: %s)", sp.Kind, strings.Join(Kinds, ", "))
	}
	if err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}
