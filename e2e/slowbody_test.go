package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
)

// TestTricklingBodyIsCutOff: a client sending a JSON body a byte at a time
// does not hold its connection past the body timeout; it is told why.
func TestTricklingBodyIsCutOff(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t, gantrytest.Options{Env: []string{"GANTRY_BODY_TIMEOUT=2s"}})
	conn, err := net.Dial("tcp", n.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/jobs HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{", n.HTTPAddr, n.AdminToken)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond): // the trickle's pace, not a wait for a state
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickling body after %s: %v", time.Since(start), err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	k, _ := resp.Body.Read(buf)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(buf[:k]), "not received within 2s") {
		t.Fatalf("answer %s %q, want 400 saying the body did not arrive in time", resp.Status, buf[:k])
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cut off after %s, want about 2s", took)
	}
}
