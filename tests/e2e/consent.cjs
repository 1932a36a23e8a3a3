// The consent page in a real browser (Debian's Chromium, driven by
// playwright-core): log in as demo, read the page, click Authorize, land on
// Syncaroo's redirect with a code. Prints one JSON line; exits 1 on failure.
// Usage: node consent.cjs AUTHORIZE_URL REDIRECT_PREFIX SCREENSHOT.png
const pw = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

async function main() {
  const [authUrl, redirectPrefix, shot] = process.argv.slice(2);
  const browser = await pw.chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(authUrl);
    // The platform's login page.
    await page.getByLabel('Username').fill('demo');
    await page.getByLabel('Password').fill('demo');
    await Promise.all([page.waitForURL(/oauth\/authorize/), page.getByRole('button', { name: 'Log in' }).click()]);
    // The consent page.
    const title = await page.title();
    const explanation = await page.locator('#explanation').innerText();
    const shared = await page.locator('#shared').innerText();
    const authorize = page.getByRole('button', { name: /Authorize/ });
    const deny = page.getByRole('button', { name: /Deny/ });
    const buttons = {
      authorize: { visible: await authorize.isVisible(), text: (await authorize.innerText()).trim() },
      deny: { visible: await deny.isVisible(), text: (await deny.innerText()).trim() },
    };
    await page.screenshot({ path: shot, fullPage: true });
    await Promise.all([page.waitForURL((u) => u.toString().startsWith(redirectPrefix)), authorize.click()]);
    const landed = page.url();
    const heading = await page.locator('h1').innerText();
    console.log(JSON.stringify({ title, explanation, shared, buttons, landed, heading }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
