package gantrytest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// RandomValue builds a random value of t with every exported field set
// (JSON-visible ones; maps and slices non-empty), as the wire would carry
// any of them.
func RandomValue(t reflect.Type, rng *rand.Rand) any {
	v := reflect.New(t).Elem()
	fill(v, rng, 0)
	return v.Interface()
}

var timeType = reflect.TypeFor[time.Time]()

func fill(v reflect.Value, rng *rand.Rand, depth int) {
	if depth > 6 {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC()))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fill(v.Field(i), rng, depth+1)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), rng, depth+1)
		v.Set(p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, 1+rng.IntN(16))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			if v.Type() == reflect.TypeFor[json.RawMessage]() {
				b = []byte(fmt.Sprintf(`{"k":%d}`, rng.IntN(1000)))
			}
			v.SetBytes(b)
			return
		}
		n := 1 + rng.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			fill(s.Index(i), rng, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 0; i < 1+rng.IntN(3); i++ {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, rng, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, rng, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", rng.IntN(1e6)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1 + rng.Int64N(100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1 + rng.Uint64N(100))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(1+rng.IntN(1000)) / 8)
	}
}

// JSONValue is v encoded as JSON and decoded into plain Go values (maps,
// slices, strings, float64s): how a client sees it, to compare two types'
// encodings.
func JSONValue(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
