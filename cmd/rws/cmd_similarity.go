package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/rws-project/rws/signature"
)

func init() {
	register(&command{
		name:    "similarity",
		summary: "cosine similarity of signatures, per layer and overall",
		usage: `rws similarity [--json] [--layers] A.rws B.rws [C.rws …]

Cosines are computed over the tensors two signatures share; "-" marks pairs with none.`,
		run: runSimilarity,
	})
}

func runSimilarity(ctx context.Context, a *app, args []string) error {
	c := commands["similarity"]
	fs := a.flagSet(c)
	asJSON := fs.Bool("json", false, "print JSON: {names, overall: [[cosine|null]], layers: [{layer, matrix}]}")
	perLayer := fs.Bool("layers", true, "also print a matrix per layer")
	files, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(files) < 2 {
		return usagef("similarity: want at least two signature files, got %d", len(files))
	}
	var sigs []*signature.Signature
	var names []string
	used := map[string]bool{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, err := signature.Read(f)
		if err != nil {
			return err
		}
		sigs = append(sigs, s)
		n := s.Name
		if n == "" || used[n] {
			n = filepath.Base(f)
		}
		used[n] = true
		names = append(names, n)
	}
	rep, err := signature.Similarity(sigs, names)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.json(rep)
	}
	a.printf("cosine similarity over all shared tensors:\n")
	printMatrix(a, names, rep.Overall)
	if *perLayer {
		for _, l := range rep.Layers {
			a.printf("\nlayer %s:\n", l.Layer)
			printMatrix(a, names, l.Matrix)
		}
	}
	return nil
}

func printMatrix(a *app, names []string, m [][]*float64) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t%s\t\n", strings.Join(names, "\t"))
	for i, row := range m {
		cells := make([]string, len(row))
		for j, v := range row {
			cells[j] = "-"
			if v != nil {
				cells[j] = fmt.Sprintf("%.4f", *v)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", names[i], strings.Join(cells, "\t"))
	}
	tw.Flush()
}
