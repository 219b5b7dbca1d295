package runtime

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "app container", in: "blog-web-1", want: true},
		{name: "dots and underscores", in: "a.b_c", want: true},
		{name: "one character", in: "x", want: true},
		{name: "128 characters", in: strings.Repeat("a", 128), want: true},
		{name: "129 characters", in: strings.Repeat("a", 129)},
		{name: "empty", in: ""},
		{name: "leading dash", in: "-web"},
		{name: "leading dot", in: ".web"},
		{name: "slash", in: "a/b"},
		{name: "dot dot path", in: "a/../b"},
		{name: "space", in: "a b"},
		{name: "non-ASCII", in: "café"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validName(tt.in); got != tt.want {
				t.Errorf("validName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
