package toolbox

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The network commands let a test check which tasks reach which: listen
// answers every connection with one line, dial says whether it got it.

// cmdListen accepts TCP connections on PORT for SECONDS, writing
// "gantry toolbox" to each.
func cmdListen(e *env, args []string) (int, error) {
	if err := wantArgs(args, 2); err != nil {
		return 0, err
	}
	d, err := parseDuration(args[1])
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", ":"+args[0])
	if err != nil {
		return 1, fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(e.stdout, "listening on %s\n", ln.Addr())
	time.AfterFunc(d, func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			return 0, nil // closed when the time is up
		}
		fmt.Fprintln(c, "gantry toolbox")
		c.Close()
	}
}

// cmdDial connects to HOST:PORT within TIMEOUT and prints the line it
// reads: exit 0 when it got one, 1 when it could not connect or read.
func cmdDial(e *env, args []string) (int, error) {
	if err := wantArgs(args, 2); err != nil {
		return 0, err
	}
	d, err := parseDuration(args[1])
	if err != nil {
		return 0, err
	}
	c, err := net.DialTimeout("tcp", args[0], d)
	if err != nil {
		fmt.Fprintf(e.stdout, "unreachable: %v\n", err)
		return 1, nil
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(d))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Fprintf(e.stdout, "no answer: %v\n", err)
		return 1, nil
	}
	fmt.Fprintf(e.stdout, "reached: %s", line)
	return 0, nil
}

// cmdProbe dials HOST:PORT again and again for SECONDS, from 16 dialers
// at once (each try waiting at most 50 ms), and says whether any try got
// the listener's line: exit 0 and "reached" when one did, 1 with the
// number of tries when none did. A test of isolation uses it to look for
// a moment when a firewall lets a connection through.
func cmdProbe(e *env, args []string) (int, error) {
	if err := wantArgs(args, 2); err != nil {
		return 0, err
	}
	d, err := parseDuration(args[1])
	if err != nil {
		return 0, err
	}
	var (
		tries   atomic.Int64
		reached = make(chan string, 1)
		end     = time.Now().Add(d)
		wg      sync.WaitGroup
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && len(reached) == 0 {
				tries.Add(1)
				c, err := net.DialTimeout("tcp", args[0], 50*time.Millisecond)
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if err == nil {
					select {
					case reached <- line:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case line := <-reached:
		fmt.Fprintf(e.stdout, "reached after %d tries: %s", tries.Load(), line)
		return 0, nil
	default:
		fmt.Fprintf(e.stdout, "unreachable in %d tries\n", tries.Load())
		return 1, nil
	}
}
