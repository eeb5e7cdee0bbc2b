package toolbox

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestListenAnswersAndDialSaysWhetherItGotThrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	done := make(chan int)
	go func() {
		code, _, _ := runCmd(t, nil, "listen", port, "2")
		done <- code
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, out, _ := runCmd(t, nil, "dial", "127.0.0.1:"+port, "1")
		if code == 0 {
			if out != "reached: gantry toolbox\n" {
				t.Fatalf("dial printed %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial never got through: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := <-done; code != 0 {
		t.Fatalf("listen exited %d", code)
	}
	if code, out, _ := runCmd(t, nil, "dial", "127.0.0.1:"+port, "1"); code != 1 || !strings.HasPrefix(out, "unreachable: ") {
		t.Fatalf("dial of a closed port: exit %d %q", code, out)
	}
	if code, out, _ := runCmd(t, nil, "probe", "127.0.0.1:"+port, "0.3"); code != 1 || !strings.HasPrefix(out, "unreachable in ") {
		t.Fatalf("probe of a closed port: exit %d %q", code, out)
	}
}

func TestProbeSaysWhetherAnyTryGotThrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("gantry toolbox\n"))
			c.Close()
		}
	}()
	if code, out, _ := runCmd(t, nil, "probe", ln.Addr().String(), "5"); code != 0 || !strings.HasPrefix(out, "reached after ") || !strings.HasSuffix(out, ": gantry toolbox\n") {
		t.Fatalf("probe of a listener: exit %d %q", code, out)
	}
}
