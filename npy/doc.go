// Package npy reads and writes NumPy .npy files (format versions 1.0, 2.0 and 3.0) holding one
// little-endian, C-order array of a plain numeric type.
//
// # Layout
//
// A .npy file is, byte by byte:
//
//	offset 0   6 bytes  magic "\x93NUMPY"
//	offset 6   1 byte   major version: 1, 2 or 3
//	offset 7   1 byte   minor version: 0
//	offset 8   2 bytes  (version 1) or 4 bytes (versions 2 and 3): HEADER_LEN, little-endian
//	offset 10 or 12     HEADER_LEN bytes: a Python dict literal, e.g.
//	                    {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//	                    padded with spaces and ended by "\n"; latin-1 (v1, v2) or UTF-8 (v3)
//	then                the array data, prod(shape) × itemsize bytes, C order
//
// NumPy pads the header so that the data starts at a multiple of 64 bytes and adds room for
// 21 digits in the first dimension (numpy ≥ 1.24); Marshal reproduces that byte for byte.
// The version field comes first so that readers can accept a range: MinVersion to MaxVersion.
//
// # Types
//
// The descr codes read and written, with their tensor.DType:
//
//	|u1 U8   |i1 I8   <i2 I16   <i4 I32   <i8 I64   <f2 F16   <f4 F32   <f8 F64   |b1 BOOL
//
// For one-byte types any byte-order character ('|', '<', '>', '=') or none is accepted.
// Big-endian multi-byte types, Fortran-order arrays, structured, complex, object and unsigned
// multi-byte types are refused with an error wrapping ErrUnsupported that says how to convert
// the array in NumPy. Every other problem is a *FormatError carrying the path and byte offset.
//
// Parsing is strict: the header must be a dict with exactly the keys descr, fortran_order and
// shape, end in a newline, contain only ASCII, and the file must hold exactly the bytes the shape
// calls for — no more, no less.
package npy
