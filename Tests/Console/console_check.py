#!/usr/bin/env python3
"""The console in a real browser: headless Chromium driven by Selenium, against two real nodes
(credentials on; the second replicates the first and is the one the console looks at), with the
supply-chain demo's data, a back-dated count included.

Checks: the pages load without console errors; no token and a wrong token give a clear message;
the node view shows the roots and the peer, reachable; a POST shows up in the root view's live
tail within a second; the aggregate view's as_of pointer (typed, and clicked on the plot) shows
the state the API gives for that time. Screenshots of each view go to SCREENSHOTS (default: a
temporary folder; the README's come from `--screenshots docs/console`).

Usage: console_check.py LATERBASE_BINARY [--screenshots FOLDER]
"""
import json, os, re, subprocess, sys, tempfile, time, urllib.parse, urllib.request

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Deployment"))
import support  # noqa: E402
from support import check, failures, free_port, stop  # noqa: E402

binary = os.path.abspath(sys.argv[1])
shots = sys.argv[sys.argv.index("--screenshots") + 1] if "--screenshots" in sys.argv else tempfile.mkdtemp(prefix="laterbase-console-shots-")
os.makedirs(shots, exist_ok=True)
work = tempfile.mkdtemp(prefix="laterbase-console-")

credentials = os.path.join(work, "credentials.json")
def add(name, role):
    out = subprocess.run([binary, "credentials", "add", name, "--role", role, "--file", credentials], capture_output=True, text=True, check=True).stdout
    return re.search(r"^token: (\S+)$", out, re.M).group(1)
admin, peer = add("ops", "admin"), add("hq-2", "peer")
open(os.path.join(work, "peer.token"), "w").write(peer)

ports = {"hq-1": free_port(), "hq-2": free_port()}
processes = {}
def serve(name, *extra):
    args = [binary, "serve", "--data", os.path.join(work, name), "--http", f"127.0.0.1:{ports[name]}", "--ingest", "tcp://127.0.0.1:*",
            "--publish", "tcp://127.0.0.1:*", "--replica-id", name, "--credentials", credentials, "--peer-probe-seconds", "0.2", *extra]
    processes[name] = subprocess.Popen(args, stdout=open(os.path.join(work, name + ".log"), "w"), stderr=subprocess.STDOUT)

def call(name, method, path, body=None):
    return support.call(ports[name], admin, method, path, body)

def wait(condition, timeout=20, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception:
            pass
        time.sleep(step)
    return None

serve("hq-1")
serve("hq-2", "--peer", f"http://127.0.0.1:{ports['hq-1']}", "--token-file", os.path.join(work, "peer.token"))
driver = None
try:
    check(wait(lambda: all(call(n, "GET", "/healthz")[0] == 200 for n in ports)), "both nodes start")
    # The demo's data on hq-1: a shipment, and stock with a count made at 10:00 recorded late.
    check(call("hq-1", "POST", "/e/shipments", [
        {"aggregate": "SHP-1001", "type": "shipment.created", "data": {"origin": "AKL", "destination": "CHC"}},
        {"aggregate": "SHP-1001", "type": "shipment.departed", "data": {"location": "AKL"}}])[0] == 201, "shipments written")
    check(call("hq-1", "POST", "/e/inventory", [
        {"aggregate": "SKU-1@AKL", "type": "stock.received", "data": {"qty": 10}, "time": "2026-11-20T09:00:00Z"},
        {"aggregate": "SKU-1@AKL", "type": "stock.picked", "data": {"qty": 3}, "time": "2026-11-20T11:00:00Z"}])[0] == 201, "inventory written")
    check(call("hq-1", "POST", "/e/inventory", {"aggregate": "SKU-1@AKL", "type": "stock.counted", "data": {"qty": 20}, "time": "2026-11-20T10:00:00Z"})[0] == 201, "the late count written")
    check(wait(lambda: call("hq-2", "GET", "/e/inventory?limit=0")[1]["head"] == "hq-1:3" and call("hq-2", "GET", "/e/shipments?limit=0")[1]["head"] == "hq-1:2"), "hq-2 replicates hq-1")

    options = webdriver.ChromeOptions()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"]:
        options.add_argument(a)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    base = f"http://127.0.0.1:{ports['hq-2']}/console"
    def severe():
        return [l for l in driver.get_log("browser") if l["level"] == "SEVERE"]
    def text(css):
        return driver.find_element(By.CSS_SELECTOR, css).text

    # No token, then a wrong one: a clear message.
    driver.get(base)
    check(wait(lambda: "needs a token" in text("#message")), f"without a token the console says it needs one: {text('#message')!r}")
    driver.find_element(By.ID, "token").send_keys("not-a-token")
    driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    check(wait(lambda: "does not know that token" in text("#message")), f"a wrong token gets a clear message: {text('#message')!r}")
    driver.save_screenshot(os.path.join(shots, "wrong-token.png"))
    driver.get_log("browser")  # the 401s of this step are expected

    # The node view.
    driver.find_element(By.ID, "token").send_keys(admin)
    driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    check(wait(lambda: text("#replica") == "hq-2"), "the node view shows the replica")
    check(wait(lambda: {r.get_attribute("data-root") for r in driver.find_elements(By.CSS_SELECTOR, "#roots tbody tr")} >= {"shipments", "inventory"}), "the node view shows both roots")
    check(wait(lambda: driver.find_element(By.CSS_SELECTOR, "#roots tr[data-root=inventory]").text.split()[-1] == call("hq-2", "GET", "/node")[1]["positions"]["inventory"]), "the node view shows inventory's position")
    check(wait(lambda: "inventory in sync" in text(f"#peers tr[data-peer='http://127.0.0.1:{ports['hq-1']}']")), "the node view shows the peer in sync")
    check(wait(lambda: "in sync" in text(f"#peers tr[data-peer='http://127.0.0.1:{ports['hq-1']}']")), "the node view shows the peer in sync")
    peer_row = f"#peers tr[data-peer='http://127.0.0.1:{ports['hq-1']}']"
    check(wait(lambda: "reachable" in text(peer_row) and "unreachable" not in text(peer_row) and "hq-1" in text(peer_row)), "the node view shows the peer, reachable")
    check(wait(lambda: "/s" in text("#write-rate") and "…" not in text("#write-rate")), "the node view shows write rates")
    check(driver.find_element(By.ID, "message").get_attribute("hidden") is not None, "no message once the token is good")
    driver.save_screenshot(os.path.join(shots, "node.png"))
    problems = severe()
    check(not problems, f"the node view loads without console errors: {problems}")

    # The root view: the live tail; a POST shows within a second.
    driver.get(base + "#/root/shipments")
    check(wait(lambda: text("#live-status") == "live" and len(driver.find_elements(By.CSS_SELECTOR, "#tail tr")) == 2), "the root view shows the tail, live")
    status, written = call("hq-2", "POST", "/e/shipments", {"aggregate": "SHP-1002", "type": "shipment.created", "data": {"origin": "WLG", "destination": "AKL"}})
    posted = time.time()
    check(status == 201, "a POST to hq-2")
    new_id = written["events"][0]["id"]
    seen = wait(lambda: driver.find_elements(By.CSS_SELECTOR, f"#tail tr[data-id='{new_id}']"), timeout=5, step=0.02)
    latency = time.time() - posted
    check(seen and latency <= 1.0, f"the POST shows in the tail within a second (took {latency:.2f} s)")
    driver.find_element(By.ID, "f-aggregate").send_keys("SHP-1001")
    check(wait(lambda: len([r for r in driver.find_elements(By.CSS_SELECTOR, "#tail tr") if r.is_displayed()]) == 2), "filtering by aggregate leaves SHP-1001's two events")
    driver.find_element(By.ID, "f-aggregate").send_keys(Keys.CONTROL, "a", Keys.DELETE)
    check(wait(lambda: len([r for r in driver.find_elements(By.CSS_SELECTOR, "#tail tr") if r.is_displayed()]) == 3), "clearing the filter shows all three again")
    driver.save_screenshot(os.path.join(shots, "root.png"))
    problems = severe()
    check(not problems, f"the root view loads without console errors: {problems}")

    # The aggregate view: the as_of pointer shows what the API gives.
    driver.get(base + "#/aggregate/inventory/" + urllib.parse.quote("SKU-1@AKL"))
    check(wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#timeline circle.mark")) == 3), "the plot has one mark per event")
    check(len(driver.find_elements(By.CSS_SELECTOR, "#timeline circle.mark.late")) == 3, "all three, back-dated, stand off the diagonal")
    check(wait(lambda: json.loads(text("#state-now")) == call("hq-2", "GET", "/a/inventory/SKU-1@AKL")[1]["state"]), "the state now is the API's")
    as_of = "2026-11-20T10:30:00Z"
    driver.find_element(By.ID, "as-of").send_keys(as_of)
    driver.find_element(By.ID, "show-then").click()
    expected = call("hq-2", "GET", "/a/inventory/SKU-1@AKL?as_of=" + as_of)[1]["state"]
    check(expected == {"on_hand": 20}, f"the API gives on_hand 20 as of 10:30: {expected}")
    check(wait(lambda: json.loads(text("#state-then")) == expected), f"the as_of pointer shows the API's state: {text('#state-then')!r}")
    # A click on the plot sets the pointer; the state shown is the API's for the time it set.
    plot = driver.find_element(By.ID, "timeline")
    webdriver.ActionChains(driver).move_to_element_with_offset(plot, plot.size["width"] // 8, 0).click().perform()
    clicked = wait(lambda: driver.find_element(By.ID, "as-of").get_attribute("value") != as_of and driver.find_element(By.ID, "as-of").get_attribute("value"))
    check(clicked, "a click on the plot moves the as_of pointer")
    if clicked:
        api_state = call("hq-2", "GET", "/a/inventory/SKU-1@AKL?as_of=" + urllib.parse.quote(clicked))
        want = api_state[1]["state"] if api_state[0] == 200 else None
        check(wait(lambda: (json.loads(text("#state-then")) if want is not None else text("#state-then")) == (want if want is not None else "nothing folded yet at that moment")),
              f"after the click the state shown is the API's for {clicked}: {text('#state-then')!r} vs {want}")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#timeline line.pointer")) >= 1, "the pointer is drawn")
    # The recorded_by pointer: what had been recorded by a moment, as the API says.
    driver.find_element(By.ID, "as-of").send_keys(Keys.CONTROL, "a", Keys.DELETE)
    recorded_by = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    driver.find_element(By.ID, "recorded-by").send_keys(recorded_by)
    driver.find_element(By.ID, "show-then").click()
    want = call("hq-2", "GET", "/a/inventory/SKU-1@AKL?recorded_by=" + recorded_by)[1]["state"]
    check(wait(lambda: json.loads(text("#state-then")) == want), f"the recorded_by pointer shows the API's state: {text('#state-then')!r} vs {want}")
    driver.find_element(By.ID, "recorded-by").send_keys(Keys.CONTROL, "a", Keys.DELETE)
    driver.find_element(By.ID, "as-of").send_keys(as_of)
    driver.find_element(By.ID, "show-then").click()
    wait(lambda: json.loads(text("#state-then")) == expected)
    driver.save_screenshot(os.path.join(shots, "aggregate.png"))
    problems = severe()
    check(not problems, f"the aggregate view loads without console errors: {problems}")
finally:
    if driver:
        driver.quit()
    stop(processes)

support.finish({n: os.path.join(work, n + ".log") for n in processes}, f"console check: every view checked in Chromium; screenshots in {shots}")
