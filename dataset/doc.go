// Package dataset loads labelled image datasets into memory as uint8 arrays in N×H×W×C order
// (height, width, channels; channels interleaved, as NumPy and PIL hold them).
//
// A dataset is named by a spec, the same everywhere in rws:
//
//	mnist                      MNIST, embedded in the binary (no set-up)
//	mnist:DIR                  MNIST IDX files (raw or .gz) in DIR
//	fashion-mnist[:DIR]        Fashion-MNIST IDX files; DIR defaults to
//	                           /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)
//	idx:IMAGES[,LABELS]        one pair of IDX files (raw or .gz)
//	cifar10:DIR                CIFAR-10 binary batches: data_batch_1..5.bin, test_batch.bin
//	cifar100:DIR[,coarse]      CIFAR-100 binary: train.bin, test.bin; fine labels (100 classes)
//	                           unless ",coarse" selects the 20 superclasses
//	cifar10c:DIR,CORRUPTION[,SEVERITY]
//	cifar100c:DIR,CORRUPTION[,SEVERITY]
//	                           CIFAR-10-C / CIFAR-100-C: DIR/CORRUPTION.npy (uint8 5·n×32×32×3,
//	                           severities 1 to 5 in order) and DIR/labels.npy (5·n or n labels);
//	                           without SEVERITY all five blocks, severity 1 first. The 5×n×H×W×C
//	                           arrays of `rws corrupt --severity all` are read the same way
//	mnistc:DIR,CORRUPTION      MNIST-C: DIR/CORRUPTION/{train,test}_{images,labels}.npy
//	folder:DIR                 image files (PNG, JPEG) in one subfolder per class, classes in
//	                           name order; DIR/train and DIR/test are used when both exist
//	npy:IMAGES[,LABELS]        a uint8 .npy array N×H×W or N×H×W×C, and an integer label array
//
// For the IDX and CIFAR datasets DIR may also be the folder that holds the unpacked archive
// (cifar-10-batches-bin, cifar-100-binary). Formats that hold a single split (npy, idx, folder
// without train/test subfolders) ignore the split; CIFAR-10-C, CIFAR-100-C hold only test images.
//
// Every loader checks sizes, magic numbers and label ranges and reports a problem with the file
// and what to do about it; nothing panics on bad data.
package dataset
