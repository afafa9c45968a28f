// Package all imports every transport that ships with busline, so that a
// program choosing its broker in YAML can open any of them by kind:
//
//	import _ "github.com/busline/busline/transports/all"
//
// Importing it links every broker client into the program; import only the
// transports you use to keep the binary small.
package all
