package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosti-paas/rosti/platform"
)

// Fields reads typed values out of a decoded object, collecting a message
// per field that has the wrong type. A null counts as absent.
type Fields struct {
	raw  map[string]json.RawMessage
	errs platform.ValidationError
}

// NewFields wraps a decoded object.
func NewFields(raw map[string]json.RawMessage) *Fields { return &Fields{raw: raw} }

// DecodeFields reads a JSON object body (DecodeObject) into Fields.
func DecodeFields(w http.ResponseWriter, r *http.Request) (*Fields, error) {
	raw, err := DecodeObject(w, r)
	if err != nil {
		return nil, err
	}
	return NewFields(raw), nil
}

// Err returns the collected type errors, a platform.ValidationError.
func (f *Fields) Err() error { return f.errs.Err() }

func (f *Fields) get(name string) (json.RawMessage, bool) {
	v, ok := f.raw[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// String reads a string field.
func (f *Fields) String(name string) *string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		f.errs.Add(name, "must be a string")
		return nil
	}
	return &s
}

// Bool reads a boolean field.
func (f *Fields) Bool(name string) *bool {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	var b bool
	if json.Unmarshal(v, &b) != nil {
		f.errs.Add(name, "must be true or false")
		return nil
	}
	return &b
}

// Int reads an integer field, given as a number or a numeric string.
func (f *Fields) Int(name string) *int64 {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	var n int64
	if json.Unmarshal(v, &n) == nil {
		return &n
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return &n
		}
	}
	f.errs.Add(name, "must be a whole number")
	return nil
}

// Float reads a number field.
func (f *Fields) Float(name string) *float64 {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	var n float64
	if json.Unmarshal(v, &n) != nil {
		f.errs.Add(name, "must be a number")
		return nil
	}
	return &n
}

// List reads a list of strings, also accepted as one string split by sep
// (strings.Fields when sep is "").
func (f *Fields) List(name, sep string) *[]string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	var list []string
	if json.Unmarshal(v, &list) == nil {
		return &list
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if sep == "" {
			list = strings.Fields(s)
		} else {
			for _, part := range strings.Split(s, sep) {
				if part = strings.TrimSpace(part); part != "" {
					list = append(list, part)
				}
			}
		}
		if list == nil {
			list = []string{}
		}
		return &list
	}
	f.errs.Add(name, "must be a list of strings or a string")
	return nil
}
