#!/bin/sh
# Writes signature/testdata/v1/fog.rws: a signature of signature/testdata/parity (first 2 weight
# layers, codec none, projection of the mean of robust1 and robust2) written by rws as of commit
# bd14637, the last before signatures could carry batch-norm running statistics, so format
# version 1. TestVersion1File reads it and checks that this rws writes the same bytes.
#
# Usage (from the repository root, in a git checkout): sh scripts/gen_signature_v1.sh
set -eu
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive bd14637 | tar -x -C "$tmp"
mkdir -p "$tmp/scripts/genv1"
cat >"$tmp/scripts/genv1/main.go" <<'GO'
package main

import (
	"context"
	"log"
	"os"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/signature"
)

func main() {
	const dir = "testdata/parity/"
	s, _, err := signature.Extract(context.Background(), signature.ExtractOptions{
		Init: dir + "init.safetensors", Clean: dir + "clean.safetensors",
		Robust: []string{dir + "robust1.safetensors", dir + "robust2.safetensors"},
		Layers: "first:2", Name: "fog", Spec: quant.Spec{Codec: quant.None}, Command: "rws extract (test vector)",
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Write(os.Args[1], signature.WriteOptions{Force: true}); err != nil {
		log.Fatal(err)
	}
}
GO
# The paths recorded in the file are relative to the signature package, where the test runs.
cd "$tmp/signature"
go run ../scripts/genv1 "$root/signature/testdata/v1/fog.rws"
