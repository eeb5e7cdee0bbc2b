package toolbox

import (
	"bufio"
	"fmt"
	"net"
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
