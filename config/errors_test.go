package config_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/busline/busline/config"
)

func TestProblemString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    config.Problem
		want string
	}{
		{"Full", config.Problem{File: "busline.yaml", Line: 7, Column: 14, Path: "subscriptions.billing.timeout", Message: "bad"}, "busline.yaml:7:14: subscriptions.billing.timeout: bad"},
		{"NoColumn", config.Problem{File: "busline.yaml", Line: 7, Message: "bad"}, "busline.yaml:7: bad"},
		{"NoLine", config.Problem{File: "busline.yaml", Path: "service", Message: "bad"}, "busline.yaml: service: bad"},
		{"NoFile", config.Problem{Line: 3, Column: 1, Path: "retry", Message: "bad"}, "3:1: retry: bad"},
		{"MessageOnly", config.Problem{Message: "bad"}, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	one := config.Problem{File: "f.yaml", Line: 1, Column: 2, Path: "a", Message: "first"}
	two := config.Problem{File: "f.yaml", Line: 3, Column: 4, Path: "b", Message: "second"}
	tests := []struct {
		name string
		err  *config.Error
		want string
	}{
		{"None", &config.Error{}, "config: invalid config"},
		{"One", &config.Error{Problems: []config.Problem{one}}, "config: f.yaml:1:2: a: first"},
		{"Several", &config.Error{Problems: []config.Problem{one, two}}, "config: 2 problems:\n\tf.yaml:1:2: a: first\n\tf.yaml:3:4: b: second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			wrapped := fmt.Errorf("open bus: %w", tt.err)
			if !errors.Is(wrapped, config.ErrInvalid) {
				t.Errorf("errors.Is(wrapped, ErrInvalid) = false")
			}
			var e *config.Error
			if !errors.As(wrapped, &e) || e != tt.err {
				t.Errorf("errors.As(wrapped, *Error) did not find the error")
			}
		})
	}
}
