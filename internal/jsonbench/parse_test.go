package jsonbench

import (
	"testing"
)

// BenchmarkParsePush500 decodes a 500-change push body into an any, as
// ReadJSONBodyWithin does; "+prescan" first checks the body limits with
// prescan, which a library without limits needs.
func BenchmarkParsePush500(b *testing.B) {
	body := pushBody500()
	for _, d := range decoders {
		for _, pre := range []bool{false, true} {
			if pre && d.name == "jsonvalue" {
				continue
			}
			name := d.name
			if pre {
				name += "+prescan"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if pre {
						if err := prescan(body, limits); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := d.decode(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("prescan-alone", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := prescan(body, limits); err != nil {
				b.Fatal(err)
			}
		}
	})
}
