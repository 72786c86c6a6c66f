import { startFakeServer } from '/work/main/tests/browser/fake-server.mjs';
import { launchChromium, newPage, openWall, waitForSettled } from '/work/main/tests/browser/lib.mjs';
const n = +process.argv[2] || 0;
const srv = await startFakeServer({ participants: n, locale: process.argv[3] || 'zh-CN', demo: true });
const b = await launchChromium();
for (const [w,h] of [[1920,1080],[1280,720]]) {
const p = await newPage(b, { width: w, height: h });
await openWall(p, srv.wallUrl, { participants: n });
await waitForSettled(p);
await p.waitForTimeout(1200);
if (process.argv[4]) { const ps = srv.state.participants; srv.addMessage(ps[1].id, {transcript:'大家好，今晚的演出太精彩了！我们爱你们！'}); srv.addMessage(ps[3].id); const m = srv.addMessage(ps[2].id, {transcript:'Hello everyone, what a great night this is!'}); srv.playback(m.id, {durationMs: 8000}); await p.waitForTimeout(3000); }
await p.screenshot({ path: `/tmp/s-${n}-${w}.png` });
console.log(JSON.stringify(await p.evaluate(() => window.__wall.layout)), p.__errors);
await p.close();
}
await b.close(); await srv.close();
