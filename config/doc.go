// Package config loads busline's YAML configuration: the service name, the
// transport and its settings, the failure policy and per consumer group
// settings.
//
// Loading is strict and says how to fix what it rejects: an unknown key, a
// value of the wrong type, a duration without a unit or an invalid setting is
// reported with its file, line, column and key path, with a "did you mean"
// for a misspelt key, and every problem in the file is reported at once:
//
//	cfg, err := config.Load("busline.yaml")
//	// config: 2 problems:
//	//	busline.yaml:7:5: subscriptions.billing.concurency: unknown key "concurency" (did you mean "concurrency"?)
//	//	busline.yaml:8:14: subscriptions.billing.timeout: expected a duration such as "30s" or "1m", got "30" (a number needs a unit: write "30s" or "30ms")
//
// This package knows nothing of transport kinds: the package of each transport
// decodes its own section with [Transport.Decode], as strictly.
//
// # Reference
//
// Every key, with its type and default. Only service is required.
//
//	service: billing-api         # string, required: 1 to 200 letters, digits, ".", "_", "-";
//	                             # the CloudEvents source of published events
//	shutdown_grace: 30s          # duration > 0, default 30s: how long Close waits for
//	                             # in-flight handlers
//	transport:
//	  kind: memory               # string, default memory: the transport to use, in lower case
//	                             # ([a-z0-9_-]+); the kind must be registered by an import
//	  rabbitmq:                  # any other key is the section of the kind it names, decoded
//	    url: amqp://localhost/   # by that transport; sections of other kinds are ignored
//	retry:                       # the failure policy of every subscription
//	  attempts: 3                # int >= 1, default 3: immediate attempts, the first included
//	  backoff:                   # the wait between immediate attempts
//	    initial: 100ms           # duration > 0, default 100ms
//	    max: 5s                  # duration >= initial, default 5s
//	    multiplier: 2            # number >= 1, default 2
//	    jitter: 0.2              # number in [0, 1], default 0.2; 0 means no jitter
//	    max_elapsed: 0s          # duration >= 0, default 0: no limit
//	  delays: [10s, 1m, 10m]     # list of durations > 0, default [10s, 1m, 10m]: delayed
//	                             # redeliveries after the immediate attempts; [] means none,
//	                             # the message goes to the poison lane
//	subscriptions:               # per consumer group; unlisted groups use the defaults
//	  billing:                   # the group name, same rule as service
//	    concurrency: 1           # int from 1 to 1024, default 1
//	    timeout: 0s              # duration >= 0, default 0: no timeout per attempt
//	    ordered: false           # bool, default false: strict ordering, retried in place
//	                             # then poisoned, no delays; needs concurrency 1
//	    retry:                   # default: the global retry; any key of retry set here
//	      attempts: 5            # overrides the global one, the others are inherited
//	      delays: []
//	topics:                      # default empty: events are published on their name
//	  order.created: orders.v1   # event name: wire topic, both following the rule of service
//
// Durations are written as Go durations: "300ms", "30s", "1m30s", "2h". A plain
// number is not a duration, except 0. An absent or empty (null) key keeps its
// default; an explicit value, zero included, replaces it. A consumer group
// listed with no settings (billing:) gets the defaults.
//
// YAML anchors, aliases and merge keys (<<: *defaults) may be used. The file
// must hold a single YAML document.
//
// # Environment variables
//
// Before the YAML is parsed, references to environment variables are expanded
// in its text:
//
//   - ${VAR} is replaced by the value of VAR. It is an error if VAR is not set;
//     a variable set to the empty string expands to nothing.
//   - ${VAR:-default} is replaced by the value of VAR, or by default when VAR
//     is unset or empty. The default runs to the first "}" and may be empty
//     or hold ":" and "/": ${URL:-amqp://guest:guest@localhost:5672/}. It is
//     not expanded itself.
//   - $$ is a literal $. A $ not followed by { or $ stays as it is.
//   - VAR is letters, digits and "_", not starting with a digit. A "${"
//     without a closing "}" on the same line is an error.
//
// References are not expanded in comments: a # at the start of a line, or after
// a space or tab, outside a quoted scalar ('...' or "...") starts a comment
// that runs to the end of the line. The content lines of block scalars (| and
// >) hold no comments, so references in them are expanded.
//
// Values are inserted as they are, before parsing: quote the reference when
// the value may hold YAML syntax such as ": " or " #". A value may not contain
// a line break (it would shift the line numbers of every problem): such a value
// is an error.
//
// # Errors
//
// [Load] and [Parse] return an [*Error], which matches [ErrInvalid] with
// errors.Is, listing every [Problem] found: undefined environment variables,
// YAML syntax errors (with YAML's line), unknown or duplicate keys, values of
// the wrong type, and settings [Config.Validate] rejects. Each problem carries
// the file, line and column of the offending text (in the file as written,
// before expansion) and its key path, such as subscriptions.billing.timeout or
// retry.delays[1].
//
// A problem never prints a value that came, even in part, from an environment
// variable, since it may be a secret: it says "got a value from ${VAR}" instead.
package config
