package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is the server process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan error
}

// startChild re-executes this program with -serve, so the server runs in
// a process of its own: its RSS is the server's alone and the driver's
// CPU and garbage do not mix into its profile.
func startChild(ctx context.Context, args []string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{"-serve"}, args...)...)
	cmd.Stderr = os.Stderr
	// The child dies with us even if we are killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrc <- a
			}
		}
		c.done <- cmd.Wait()
	}()
	select {
	case c.addr = <-addrc:
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("server exited before serving: %v", err)
	case <-time.After(60 * time.Second):
		c.stop()
		return nil, errors.New("server did not start within 60 s")
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// stop closes the child's stdin (its signal to shut down and write its
// profiles) and waits for it; after 20 s it is killed.
func (c *child) stop() error {
	c.stdin.Close()
	select {
	case err := <-c.done:
		return err
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		return errors.New("server did not stop in 20 s; killed")
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// procMem reads VmRSS and VmHWM (peak RSS) of pid, in MiB.
func procMem(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

// rssSampler tracks the server's peak RSS during one workload: it resets
// the kernel's high-water mark (writing 5 to /proc/pid/clear_refs) when it
// starts, samples VmRSS every 20 ms, and reports the larger of the
// sampled maximum and VmHWM.
type rssSampler struct {
	pid  int
	stop chan struct{}
	wg   sync.WaitGroup
	max  float64
	// reset is whether the high-water mark was reset; VmHWM is used only
	// then, since otherwise it is the peak of the process's whole life.
	reset bool
}

func startRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	if pid == 0 {
		return s
	}
	s.reset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := procMem(pid); err == nil && rss > s.max {
				s.max = rss
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// peak stops sampling and returns the peak RSS in MiB.
func (s *rssSampler) peak() float64 {
	if s.pid == 0 {
		return 0
	}
	close(s.stop)
	s.wg.Wait()
	if _, hwm, err := procMem(s.pid); err == nil && s.reset && hwm > s.max {
		s.max = hwm
	}
	return s.max
}
