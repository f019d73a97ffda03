package corrupt

import "math"

// contrast returns (x − mean)·c + mean for the image u, where mean is the mean of each
// channel over the whole image (np.mean(x, axis=(0, 1))).
func contrast(u Image, c float64) Image {
	out := NewImage(u.H, u.W, u.C)
	for ch := 0; ch < u.C; ch++ {
		m := 0.0
		for i := ch; i < len(u.Pix); i += u.C {
			m += u.Pix[i]
		}
		m /= float64(u.H * u.W)
		for i := ch; i < len(u.Pix); i += u.C {
			out.Pix[i] = (u.Pix[i]-m)*c + m
		}
	}
	return out
}

// rgbToHSV is skimage.color.rgb2hsv (scikit-image 0.19) for one pixel: V is the maximum,
// S = (max − min)/max, and H follows whichever channel equals the maximum, blue taking precedence
// over green over red on ties; H and S are 0 where max = min.
func rgbToHSV(r, g, b float64) (h, s, v float64) {
	v = max(r, g, b)
	delta := v - min(r, g, b)
	if delta == 0 {
		return 0, 0, v
	}
	s = delta / v
	switch {
	case b == v:
		h = 4 + (r-g)/delta
	case g == v:
		h = 2 + (b-r)/delta
	default:
		h = (g - b) / delta
	}
	h /= 6
	h -= math.Floor(h) // Python's h % 1.
	return h, s, v
}

// hsvToRGB is skimage.color.hsv2rgb (scikit-image 0.19) for one pixel.
func hsvToRGB(h, s, v float64) (r, g, b float64) {
	hi := math.Floor(h * 6)
	f := h*6 - hi
	p := v * (1 - s)
	q := v * (1 - f*s)
	t := v * (1 - (1-f)*s)
	switch int(hi) % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	}
	return v, p, q
}

// hsvAdjust maps every pixel of the image u through HSV with S ← clip(S·sMul + sAdd,
// 0, 1) and V ← clip(V + vAdd, 0, 1), then back to RGB: make_cifar_c's saturate (sMul, sAdd) and
// brightness (vAdd). A one-channel image is a grey RGB image: saturation leaves it unchanged
// (imagecorruptions keeps the red channel of the result, which equals V) and brightness is
// clip(x + vAdd, 0, 1), imagecorruptions' grey branch.
func hsvAdjust(u Image, sMul, sAdd, vAdd float64) Image {
	out := NewImage(u.H, u.W, u.C)
	if u.C == 1 {
		for i, x := range u.Pix {
			out.Pix[i] = min(max(x+vAdd, 0), 1)
		}
		return out
	}
	for i := 0; i < len(u.Pix); i += 3 {
		h, s, v := rgbToHSV(u.Pix[i], u.Pix[i+1], u.Pix[i+2])
		if sMul != 1 || sAdd != 0 {
			s = min(max(s*sMul+sAdd, 0), 1)
		}
		if vAdd != 0 {
			v = min(max(v+vAdd, 0), 1)
		}
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = hsvToRGB(h, s, v)
	}
	return out
}
