package nn

// sequential runs layers one after the other, like torch.nn.Sequential.
type sequential struct {
	layers []layer
	in     shape
}

func (s *sequential) out() shape {
	if len(s.layers) == 0 {
		return s.in
	}
	return s.layers[len(s.layers)-1].out()
}

func (s *sequential) state() []*param {
	var ps []*param
	for _, l := range s.layers {
		ps = append(ps, l.state()...)
	}
	return ps
}

func (s *sequential) modules() []string {
	var ms []string
	for _, l := range s.layers {
		ms = append(ms, l.modules()...)
	}
	return ms
}

func (s *sequential) forward(x []float32, n int, train bool) []float32 {
	for _, l := range s.layers {
		x = l.forward(x, n, train)
	}
	return x
}

func (s *sequential) backward(dy []float32, needDx bool) []float32 {
	for i := len(s.layers) - 1; i >= 0; i-- {
		dy = s.layers[i].backward(dy, needDx || i > 0)
	}
	return dy
}

// basicBlock is the residual block of CIFAR ResNets: relu(bn2(conv2(relu(bn1(conv1(x))))) +
// shortcut(x)), the shortcut being the identity or a strided 1×1 convolution with batch norm
// (named shortcut.0 and shortcut.1, as in the "option B" of the common PyTorch CIFAR ResNet).
type basicBlock struct {
	conv1, conv2 *conv2d
	bn1, bn2     *batchNorm
	act1         *relu
	scConv       *conv2d
	scBN         *batchNorm
	o            shape
	y, dx        []float32
}

func newBasicBlock(name string, in shape, planes, stride int) (*basicBlock, error) {
	c1, err := newConv(name+".conv1", in, planes, 3, stride, 1, false)
	if err != nil {
		return nil, err
	}
	c2, err := newConv(name+".conv2", c1.out(), planes, 3, 1, 1, false)
	if err != nil {
		return nil, err
	}
	b := &basicBlock{
		conv1: c1, bn1: newBatchNorm(name+".bn1", c1.out()), act1: newReLU(c1.out()),
		conv2: c2, bn2: newBatchNorm(name+".bn2", c2.out()), o: c2.out(),
	}
	if stride != 1 || in.c != planes {
		sc, err := newConv(name+".shortcut.0", in, planes, 1, stride, 0, false)
		if err != nil {
			return nil, err
		}
		b.scConv, b.scBN = sc, newBatchNorm(name+".shortcut.1", sc.out())
	}
	return b, nil
}

func (b *basicBlock) out() shape { return b.o }

func (b *basicBlock) state() []*param {
	ps := append(b.conv1.state(), b.bn1.state()...)
	ps = append(ps, b.conv2.state()...)
	ps = append(ps, b.bn2.state()...)
	if b.scConv != nil {
		ps = append(ps, b.scConv.state()...)
		ps = append(ps, b.scBN.state()...)
	}
	return ps
}

func (b *basicBlock) modules() []string {
	ms := []string{b.conv1.name, b.bn1.name, b.conv2.name, b.bn2.name}
	if b.scConv != nil {
		ms = append(ms, b.scConv.name, b.scBN.name)
	}
	return ms
}

func (b *basicBlock) forward(x []float32, n int, train bool) []float32 {
	h := b.conv1.forward(x, n, train)
	h = b.bn1.forward(h, n, train)
	h = b.act1.forward(h, n, train)
	h = b.conv2.forward(h, n, train)
	h = b.bn2.forward(h, n, train)
	s := x
	if b.scConv != nil {
		s = b.scBN.forward(b.scConv.forward(x, n, train), n, train)
	}
	b.y = grow(b.y, n*b.o.size())
	y := b.y
	parallel(len(y), minElems, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = max(h[i]+s[i], 0)
		}
	})
	return y
}

func (b *basicBlock) backward(dy []float32, needDx bool) []float32 {
	y := b.y
	parallel(len(y), minElems, func(_, lo, hi int) {
		reluMask(dy[lo:hi], y[lo:hi])
	})
	d := b.bn2.backward(dy, true)
	d = b.conv2.backward(d, true)
	d = b.act1.backward(d, true)
	d = b.bn1.backward(d, true)
	d = b.conv1.backward(d, needDx)
	ds := dy
	if b.scConv != nil {
		ds = b.scConv.backward(b.scBN.backward(dy, true), needDx)
	}
	if !needDx {
		return nil
	}
	b.dx = grow(b.dx, len(d))
	dx := b.dx
	parallel(len(dx), minElems, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			dx[i] = d[i] + ds[i]
		}
	})
	return dx
}
