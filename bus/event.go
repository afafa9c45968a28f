package bus

import (
	"errors"
	"fmt"
	"reflect"
)

// Event is implemented by every type published or handled through busline.
// EventName returns the event's stable wire name, such as "orders.placed":
// it names the topic and the CloudEvents type, so renaming the Go type never
// orphans messages. It must not depend on the value's fields, and for a
// pointer type it must not dereference the receiver: busline calls it on a
// zero value.
type Event interface {
	EventName() string
}

// MaxNameLen is the longest event, group, service or topic name accepted.
const MaxNameLen = 200

// ErrInvalidName is wrapped by errors about event, group, service or topic
// names that are empty, too long or use characters other than
// [a-zA-Z0-9._-]: the characters every broker accepts in a topic, key or
// queue name.
var ErrInvalidName = errors.New("invalid name")

// ValidateName reports whether name is usable as an event, group, service or
// topic name. what says which kind of name it is, for the error message.
func ValidateName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, what)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s name %.20q... is %d bytes long, at most %d are allowed", ErrInvalidName, what, name, len(name), MaxNameLen)
	}
	for i, r := range name {
		if !nameChar(r) {
			return fmt.Errorf("%w: %s name %q has %q at byte %d; use only ASCII letters, digits, '.', '_' and '-'", ErrInvalidName, what, name, r, i)
		}
	}
	return nil
}

func nameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// eventName returns T's wire name, calling EventName on a zero T (a new
// element when T is a pointer type).
func eventName[T Event]() (name string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%T.EventName panicked on a zero value (%v): it must return a constant", *new(T), r)
		}
	}()
	return newEvent[T]().EventName(), nil
}

// newEvent returns a zero T, or a pointer to a zero element when T is a
// pointer type, ready to be decoded into.
func newEvent[T Event]() T {
	var zero T
	if t := reflect.TypeFor[T](); t.Kind() == reflect.Pointer {
		return reflect.New(t.Elem()).Interface().(T)
	}
	return zero
}
