import { main } from '../coordinator/cli/main.js';

/** The CLI as a benchmark child: same entry point, plus its peak RSS on stderr. */
const code = await main(process.argv.slice(2));
process.stderr.write(`__maxrss_kb=${process.resourceUsage().maxRSS}\n`);
process.exitCode = code;
