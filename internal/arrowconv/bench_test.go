package arrowconv

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func benchArrays(b *testing.B) []struct {
	name string
	arr  arrow.Array
} {
	mem := memory.NewGoAllocator()
	u8 := array.NewUint8Builder(mem)
	u8.Resize(4 << 20)
	for i := range 4 << 20 {
		u8.UnsafeAppend(uint8(i))
	}
	f64 := array.NewFloat64Builder(mem)
	for i := range 1000 {
		f64.Append(float64(i) / 3)
	}
	arrs := []struct {
		name string
		arr  arrow.Array
	}{
		{"uint8_4MiB", u8.NewArray()},
		{"float64_1000", f64.NewArray()},
	}
	u8.Release()
	f64.Release()
	b.Cleanup(func() {
		for _, a := range arrs {
			a.arr.Release()
		}
	})
	return arrs
}

func BenchmarkWrite(b *testing.B) {
	for _, tc := range benchArrays(b) {
		b.Run(tc.name, func(b *testing.B) {
			dst := make([]byte, Size(tc.arr))
			b.SetBytes(int64(len(dst)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Write(dst, tc.arr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for _, tc := range benchArrays(b) {
		b.Run(tc.name, func(b *testing.B) {
			data := make([]byte, Size(tc.arr))
			info, err := Write(data, tc.arr)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				arr, err := Read(data, info)
				if err != nil {
					b.Fatal(err)
				}
				arr.Release()
			}
		})
	}
}
