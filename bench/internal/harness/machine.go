package harness

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Machine describes the machine a run measured on.
type Machine struct {
	CPU        string // model name from /proc/cpuinfo
	Cores      int    // runtime.NumCPU
	GOMAXPROCS int
	Memory     string // MemTotal from /proc/meminfo
	OS         string // GOOS/GOARCH and kernel release
	Go         string // runtime.Version
	LoadBefore string // /proc/loadavg at the start: a busy machine gives noisy figures
	LoadAfter  string // /proc/loadavg at the end
}

func describeMachine() Machine {
	m := Machine{
		CPU:        "unknown CPU",
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Memory:     "unknown",
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Go:         runtime.Version(),
		LoadBefore: loadAverage(),
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		m.Memory = v
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += " (Linux " + strings.TrimSpace(string(b)) + ")"
	}
	return m
}

// String describes m in one line.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s RAM, %s, %s; load average %s at the start, %s at the end",
		m.CPU, m.Cores, m.GOMAXPROCS, m.Memory, m.OS, m.Go, m.LoadBefore, m.LoadAfter)
}

// loadAverage returns the 1, 5 and 15 minute load averages, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
