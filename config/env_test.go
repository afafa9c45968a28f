package config_test

import (
	"strings"
	"testing"

	"github.com/busline/busline/config"
)

// secrets is the transport section the environment tests decode.
type secrets struct {
	URL      string `yaml:"url"`
	Password string `yaml:"password"`
	Note     string `yaml:"note"`
}

func TestEnvExpansion(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"SVC":   "billing",
		"EMPTY": "",
		"URL":   "amqp://u:p@broker:5672/",
		"HOST":  "broker",
	}
	tests := []struct {
		name    string
		section string // the lines under "  demo:"
		want    secrets
	}{
		{"Set", "url: ${URL}", secrets{URL: "amqp://u:p@broker:5672/"}},
		{"DefaultWhenUnset", "url: ${NOPE:-amqp://guest:guest@localhost:5672/}", secrets{URL: "amqp://guest:guest@localhost:5672/"}},
		{"DefaultWhenEmpty", "url: ${EMPTY:-x}", secrets{URL: "x"}},
		{"EmptyDefault", "url: a${NOPE:-}b", secrets{URL: "ab"}},
		{"SetButEmpty", "url: a${EMPTY}b", secrets{URL: "ab"}},
		{"SetWinsOverDefault", "url: ${HOST:-localhost}", secrets{URL: "broker"}},
		{"DoubleDollarEscapes", "password: pa$$${HOST}$$", secrets{Password: "pa$broker$"}},
		{"LoneDollarStays", "password: pa$word$", secrets{Password: "pa$word$"}},
		{"DollarBeforeOtherRune", "password: '$ {x} $('", secrets{Password: "$ {x} $("}},
		{"InsideQuotes", `url: "amqp://${HOST}:5672/"`, secrets{URL: "amqp://broker:5672/"}},
		{"HashInsideQuotesIsNoComment", `note: "a #${HOST}"`, secrets{Note: "a #broker"}},
		{"HashInsideSingleQuotesIsNoComment", `note: 'it''s #${HOST}'`, secrets{Note: "it's #broker"}},
		{"HashInPlainScalarIsNoComment", "note: a#${HOST}", secrets{Note: "a#broker"}},
		{"CommentNotExpanded", "url: ${HOST} # was ${UNSET} and $${x}", secrets{URL: "broker"}},
		{"CommentLineNotExpanded", "# url: ${UNSET}\n    url: x", secrets{URL: "x"}},
		{"ApostropheInPlainScalar", "note: it's ${HOST} # ${UNSET}", secrets{Note: "it's broker"}},
		{"MultiLineQuoted", "note: \"a #${HOST}\n      b #${HOST}\" # ${UNSET}", secrets{Note: "a #broker b #broker"}},
		{"BlockScalarHasNoComments", "note: |\n      # ${HOST}\n      x\n    # ${UNSET}\n    url: y", secrets{Note: "# broker\nx\n", URL: "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yaml := "# service: ${UNSET}\nservice: ${SVC}\ntransport:\n  kind: demo\n  demo:\n    " + tt.section + "\n"
			cfg, err := config.Parse([]byte(yaml), "busline.yaml", env(vars))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, yaml)
			}
			if cfg.Service != "billing" {
				t.Errorf("Service = %q, want billing", cfg.Service)
			}
			var got secrets
			if err := cfg.Transport.Decode(&got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != tt.want {
				t.Errorf("section = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEnvExpansionProblems(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"SECRET":    "hunter2",
		"NEG":       "-5s",
		"LONG":      "12345678",
		"MULTILINE": "hunter2\nline two",
		"KEY":       "hunter2",
	}
	tests := []struct {
		name string
		yaml string
		want string // every problem, one per line
	}{
		{
			name: "Missing",
			yaml: "service: ${SVC}\n",
			want: "busline.yaml:1:10: environment variable ${SVC} is not set: set it, or give a default with ${SVC:-value}",
		},
		{
			name: "EveryMissingOne",
			yaml: "service: ${A}-${B}\ntransport:\n  kind: \"${C}\"\n",
			want: `busline.yaml:1:10: environment variable ${A} is not set: set it, or give a default with ${A:-value}
busline.yaml:1:15: environment variable ${B} is not set: set it, or give a default with ${B:-value}
busline.yaml:3:10: environment variable ${C} is not set: set it, or give a default with ${C:-value}`,
		},
		{
			name: "Unterminated",
			yaml: "service: ${SVC\n",
			want: "busline.yaml:1:10: unterminated ${: close the reference with }, or write $$ for a literal $",
		},
		{
			name: "InvalidName",
			yaml: "service: ${1SVC}\n",
			want: `busline.yaml:1:10: invalid reference "${1SVC}": write ${VAR} or ${VAR:-default}, where VAR is letters, digits and _ not starting with a digit`,
		},
		{
			name: "OtherOperator",
			yaml: "service: ${SVC-x}\n",
			want: `busline.yaml:1:10: invalid reference "${SVC-x}": write ${VAR} or ${VAR:-default}, where VAR is letters, digits and _ not starting with a digit`,
		},
		{
			name: "LineBreakInValue",
			yaml: "service: s\ntransport:\n  kind: x${MULTILINE}\n",
			want: "busline.yaml:3:10: environment variable ${MULTILINE} contains a line break, which a config value cannot hold: set it on one line",
		},
		{
			name: "SecretNotEchoedOnTypeError",
			yaml: "service: s\nsubscriptions:\n  billing:\n    concurrency: ${SECRET}\n",
			want: "busline.yaml:4:18: subscriptions.billing.concurrency: expected an integer, got a value from ${SECRET}",
		},
		{
			name: "SecretNotEchoedWhenPartial",
			yaml: "service: s\nsubscriptions:\n  billing:\n    timeout: 1${SECRET}s\n",
			want: `busline.yaml:4:14: subscriptions.billing.timeout: expected a duration such as "30s" or "1m", got a value from ${SECRET}`,
		},
		{
			name: "SecretNotEchoedOnValidation",
			yaml: "service: ${SECRET}x!\nshutdown_grace: \"${NEG}\"\n",
			want: `busline.yaml:1:10: service: must be 1 to 200 letters, digits, ".", "_" or "-", got a value from ${SECRET}
busline.yaml:2:17: shutdown_grace: must be > 0, such as 30s, got a value from ${NEG}`,
		},
		{
			name: "SecretKeyNotEchoed",
			yaml: "service: s\n${KEY}: 1\n",
			want: "busline.yaml:2:1: ${KEY}: unknown key from ${KEY} (known keys: service, shutdown_grace, transport, retry, subscriptions, topics)",
		},
		{
			name: "SecretGroupNameNotEchoed",
			yaml: "service: s\nsubscriptions:\n  ${KEY}!:\n    concurrency: 0\n",
			want: `busline.yaml:3:3: subscriptions.${KEY}: consumer group name must be 1 to 200 letters, digits, ".", "_" or "-", got a key from ${KEY}
busline.yaml:4:18: subscriptions.${KEY}.concurrency: must be from 1 to 1024, got 0`,
		},
		{
			name: "SecretSectionNameNotEchoed",
			yaml: "service: s\ntransport:\n  ${KEY}: {}\n",
			want: "busline.yaml:2:1: transport: transport.kind is missing (did you mean kind: ${KEY}?)",
		},
		{
			name: "DefaultIsEchoed",
			yaml: "service: s\nshutdown_grace: ${UNSET:-soon}\n",
			want: `busline.yaml:2:17: shutdown_grace: expected a duration such as "30s" or "1m", got "soon"`,
		},
		{
			name: "ColumnsAfterAnExpansion",
			yaml: "service: s\nretry: {attempts: ${LONG}, delays: soon}\n",
			want: `busline.yaml:2:36: retry.delays: expected a list, got "soon" (write [a, b] or one "- item" per line)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ps := problems(t, tt.yaml, vars)
			got := strs(ps)
			if got != tt.want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Errorf("problems print a value from the environment:\n%s", got)
			}
		})
	}
}
