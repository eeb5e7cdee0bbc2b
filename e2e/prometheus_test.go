package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/gantrytest"
)

// TestPrometheusRulesAndDashboard: a real Prometheus scrapes a real node
// with a bearer token and loads deploy/prometheus/gantry-rules.yml
// (promtool passes it first); every series the rules and the Grafana
// dashboard name returns data, every recording rule records, and killing
// the node fires GantryInstanceDown. Only the rules' `for:` durations are
// shortened, so the test need not wait minutes.
func TestPrometheusRulesAndDashboard(t *testing.T) {
	t.Parallel()
	prom, promErr := exec.LookPath("prometheus")
	promtool, toolErr := exec.LookPath("promtool")
	gantrytest.Require(t, promErr == nil && toolErr == nil, "prometheus and promtool are not installed (apt-get install prometheus; scripts/test-deps.sh does)")
	root, err := gantrytest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(root, "deploy", "prometheus", "gantry-rules.yml")
	if out, err := exec.Command(promtool, "check", "rules", rulesPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	rules, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	dashNames := dashboardMetricNames(t, filepath.Join(root, "deploy", "grafana", "gantry-dashboard.json"))

	n := gantrytest.Start(t)
	dir := t.TempDir()
	// The example configuration is valid once its token file exists.
	example, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "gantry-token")
	writeFile(t, tokenFile, n.AdminToken+"\n")
	writeFile(t, filepath.Join(dir, "gantry-rules.yml"), string(rules))
	writeFile(t, filepath.Join(dir, "example.yml"), strings.ReplaceAll(string(example), "/etc/prometheus/gantry-token", tokenFile))
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "example.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config deploy/prometheus/prometheus.yml: %v\n%s", err, out)
	}

	fast := regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`).ReplaceAllString(string(rules), "${1}1s")
	writeFile(t, filepath.Join(dir, "rules.yml"), fast)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: gantry
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: %q
    static_configs:
      - targets: [%q]
`, filepath.Join(dir, "rules.yml"), n.AdminToken, n.HTTPAddr))

	addr := fmt.Sprintf("127.0.0.1:%d", gantrytest.FreePort(t))
	p := startPrometheus(t, prom, dir, addr)
	api := "http://" + addr

	// Prometheus loaded every rule of the file.
	var loaded struct{ Groups []promGroup }
	gantrytest.Eventually(t, 20*time.Second, func() bool {
		return promGet(api, "/api/v1/rules", nil, &loaded) == nil && len(loaded.Groups) == 2
	}, "Prometheus to load the rules (log: %s)", p.log)
	names := map[string]string{} // series name -> where it is used
	var recorded []string
	for _, g := range loaded.Groups {
		for _, r := range g.Rules {
			for _, m := range promqlMetricNames(r.Query) {
				names[m] = "rule " + r.Name
			}
			if r.Type == "recording" {
				recorded = append(recorded, r.Name)
				names[r.Name] = "recording rule " + r.Name
			}
		}
	}
	if c := strings.Count(string(rules), "\n      - record: ") + strings.Count(string(rules), "\n      - alert: "); c != len(recorded)+countAlerts(loaded.Groups) {
		t.Fatalf("the file has %d rules, Prometheus loaded %d", c, len(recorded)+countAlerts(loaded.Groups))
	}
	for m, where := range dashNames {
		names[m] = where
	}
	for _, want := range []string{"up", "gantry_node_up", "gantry_raft_has_leader", "gantry_data_disk_free_bytes",
		"gantry_registry_requests_total", "gantry_jobs_ended_total", "gantry_queue_depth", "gantry_scheduler_placements_total"} {
		if _, ok := names[want]; !ok {
			t.Errorf("neither the rules nor the dashboard use %s", want)
		}
	}

	gantrytest.Eventually(t, 20*time.Second, func() bool { return targetHealth(api) == "up" },
		"the node's scrape target to be up (health %q; log: %s)", targetHealth(api), p.log)
	var missing []string
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		missing = missing[:0]
		for m := range names {
			if !hasData(api, m) {
				missing = append(missing, m)
			}
		}
		sort.Strings(missing)
		return len(missing) == 0
	}, "every series named by the rules and the dashboard to return data; still none for %v", &missing)
	if s := alertState(api, "GantryInstanceDown"); s != "" {
		t.Fatalf("GantryInstanceDown is %s while the node runs", s)
	}

	n.Kill9(t)
	gantrytest.Eventually(t, 30*time.Second, func() bool { return alertState(api, "GantryInstanceDown") == "firing" },
		"GantryInstanceDown to fire once the node is killed (state %q)", alertState(api, "GantryInstanceDown"))
}

// promGroup is a rule group as /api/v1/rules lists it.
type promGroup struct {
	Rules []struct{ Name, Query, Type string }
}

func countAlerts(groups []promGroup) int {
	n := 0
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Type == "alerting" {
				n++
			}
		}
	}
	return n
}

type promProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startPrometheus runs Prometheus on addr with its storage in dir, waits
// until it is ready, and stops it (and its storage goes with dir) when the
// test ends.
func startPrometheus(t *testing.T, bin, dir, addr string) *promProcess {
	t.Helper()
	p := &promProcess{done: make(chan struct{}), log: filepath.Join(dir, "prometheus.log")}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start prometheus: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("---- prometheus log ----\n%s", lastBytes(b, 8000))
		}
	})
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("prometheus exited during start-up:\n%s", lastBytes(b, 8000))
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "prometheus to be ready")
	return p
}

// promGet reads a Prometheus API answer's data into out.
func promGet(api, path string, q url.Values, out any) error {
	u := api + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// hasData reports whether an instant query for the series name returns a
// sample (a NaN, e.g. a ratio of rates that are zero, is data too).
func hasData(api, name string) bool {
	var d struct {
		Result []json.RawMessage `json:"result"`
	}
	err := promGet(api, "/api/v1/query", url.Values{"query": {fmt.Sprintf(`{__name__=%q}`, name)}}, &d)
	return err == nil && len(d.Result) > 0
}

func targetHealth(api string) string {
	var d struct {
		ActiveTargets []struct {
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := promGet(api, "/api/v1/targets", nil, &d); err != nil || len(d.ActiveTargets) == 0 {
		return ""
	}
	if d.ActiveTargets[0].LastError != "" {
		return d.ActiveTargets[0].Health + ": " + d.ActiveTargets[0].LastError
	}
	return d.ActiveTargets[0].Health
}

// alertState is "pending", "firing" or "" for an alert not active.
func alertState(api, name string) string {
	var d struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := promGet(api, "/api/v1/alerts", nil, &d); err != nil {
		return "unknown: " + err.Error()
	}
	for _, a := range d.Alerts {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}

// dashboardMetricNames reads the Grafana dashboard and returns the series
// its panels' queries name, each with the panel's title.
func dashboardMetricNames(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", path)
	}
	out := map[string]string{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Fatalf("%s: panel id %d twice", path, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Fatalf("%s: panel %q has no query", path, p.Title)
		}
		for _, q := range p.Targets {
			ms := promqlMetricNames(q.Expr)
			if len(ms) == 0 {
				t.Fatalf("%s: panel %q: query %q names no series", path, p.Title, q.Expr)
			}
			for _, m := range ms {
				out[m] = "dashboard panel " + p.Title
			}
		}
	}
	return out
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*\s*\(?`)
	promNonSeries = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true}
)

// promqlMetricNames returns the series names a PromQL expression selects:
// identifiers that are not functions, keywords, label names or inside
// strings, matchers and ranges.
func promqlMetricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if strings.HasSuffix(tok, "(") {
			continue // a function or aggregation
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // an exponent or unit inside a number
		}
		tok = strings.TrimSpace(tok)
		if promNonSeries[tok] || seen[tok] {
			continue
		}
		seen[tok] = true
		out = append(out, tok)
	}
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up{job="gantry"} == 0`, []string{"up"}},
		{`sum by (instance, code) (rate(gantry_registry_requests_total{code=~"5.."}[5m]))`, []string{"gantry_registry_requests_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(gantry_raft_commit_seconds_bucket[5m])))`, []string{"gantry_raft_commit_seconds_bucket"}},
		{"gantry:queue_depth:max > 0\n  and\ngantry:scheduler_placements:rate5m == 0", []string{"gantry:queue_depth:max", "gantry:scheduler_placements:rate5m"}},
		{`max by (node) (gantry_node_cpu_millicores{kind="allocated"}) / 1e3`, []string{"gantry_node_cpu_millicores"}},
		{`gantry_data_disk_free_bytes / on (instance) gantry_data_disk_size_bytes`, []string{"gantry_data_disk_free_bytes", "gantry_data_disk_size_bytes"}},
	} {
		got := promqlMetricNames(c.expr)
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%q: %v, want %v", c.expr, got, c.want)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
