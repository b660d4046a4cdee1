package trace

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteTo prints the report as the tables kiln run --stats shows: exits
// per reason, per device and per vCPU, then the boot phases.
func (r Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	b.WriteString("kiln: exit statistics (time in kiln: handling the exit, from KVM_RUN returning until the device is done)\n\n")

	var all Tally
	t := table{align: "lrrr"}
	t.add("exit reason", "exits", "time in kiln", "per exit")
	for _, row := range r.Reasons {
		t.add(row.Reason.String(), count(row.Exits), duration(row.Time), perExit(row.Tally))
		all.Exits += row.Exits
		all.Time += row.Time
	}
	t.add("all", count(all.Exits), duration(all.Time), perExit(all))
	t.write(&b)

	if len(r.Devices) > 0 {
		b.WriteByte('\n')
		t = table{align: "llrrr"}
		t.add("device", "where", "exits", "time in kiln", "per exit")
		for _, row := range r.Devices {
			name := row.Device
			if name == "" {
				name = "(no device)"
			}
			t.add(name, row.Where, count(row.Exits), duration(row.Time), perExit(row.Tally))
		}
		t.write(&b)
	}

	b.WriteByte('\n')
	t = table{align: "lrrr"}
	t.add("vCPU", "exits", "in KVM_RUN", "in kiln")
	for _, row := range r.VCPUs {
		t.add(fmt.Sprint(row.VCPU), count(row.Exits), duration(row.Guest), duration(row.Time))
	}
	t.write(&b)

	if len(r.Failures) > 0 {
		b.WriteByte('\n')
		t = table{align: "llrl"}
		t.add("device needing a reset", "where", "at", "why")
		for _, f := range r.Failures {
			t.add(f.Device, f.Where, duration(f.At), f.Reason)
		}
		t.write(&b)
	}

	b.WriteByte('\n')
	t = r.Boot.table()
	t.write(&b)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// table returns the boot phases: how long each took, between which two
// moments.
func (b Boot) table() table {
	t := table{align: "lrll"}
	t.add("boot phase", "time", "from", "to")
	phase := func(name string, from, to time.Time, fromName, toName string) {
		d := "-"
		if !from.IsZero() && !to.IsZero() {
			d = duration(to.Sub(from))
		}
		t.add(name, d, fromName, toName)
	}
	phase("VMM setup", b.Start, b.FirstRun, "kiln start", "first KVM_RUN")
	switch {
	case b.Userspace.IsZero():
		phase("kernel", b.FirstRun, b.End, "first KVM_RUN", "end (user space never reported)")
	case b.Running.IsZero():
		phase("kernel", b.FirstRun, b.Userspace, "first KVM_RUN", "guest user space")
		phase("user space", b.Userspace, b.End, "guest user space", "end (no command started)")
	default:
		phase("kernel", b.FirstRun, b.Userspace, "first KVM_RUN", "guest user space")
		phase("init", b.Userspace, b.Running, "guest user space", "command started")
		phase("command", b.Running, b.End, "command started", "end of the VM")
	}
	phase("total", b.Start, b.End, "kiln start", "end of the VM")
	return t
}

// table is a heading row and data rows, printed in columns; align has an
// 'l' for each column aligned left (words) and an 'r' for each aligned
// right (numbers).
type table struct {
	align string
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder) {
	width := make([]int, len(t.align))
	for _, row := range t.rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if t.align[i] == 'r' {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

func count(n uint64) string { return fmt.Sprint(n) }

// perExit is the mean time per exit.
func perExit(t Tally) string {
	if t.Exits == 0 {
		return "-"
	}
	return duration(t.Time / time.Duration(t.Exits))
}

// duration is how the tables print a time (FormatDuration).
func duration(d time.Duration) string { return FormatDuration(d) }

// FormatDuration prints d in a unit that suits it, with three significant
// digits: "812 ns", "4.25 µs", "31.4 ms", "27.1 s", "1.5 min". kiln bench
// prints its times the same way.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	case d >= time.Second:
		return ThreeDigits(d.Seconds(), "s")
	case d >= time.Millisecond:
		return ThreeDigits(float64(d)/1e6, "ms")
	case d >= time.Microsecond:
		return ThreeDigits(float64(d)/1e3, "µs")
	}
	return fmt.Sprintf("%d ns", d.Nanoseconds())
}

// ThreeDigits prints v with unit and three significant digits (for v
// from 1 to 999): "4.25 MiB", "31.4 ms", "812 µs".
func ThreeDigits(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}
