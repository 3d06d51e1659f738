/** Ordinary least-squares line through (x, y): the slope, R² and the slope's standard error. */
export interface LineFit {
  slope: number;
  intercept: number;
  r2: number;
  /** Standard error of the slope (as scipy's linregress); null with fewer than 3 points. */
  stderr: number | null;
}

/** Means and centred sums of squares and products of the first n points. */
export function moments(x: ArrayLike<number>, y: ArrayLike<number>, n: number) {
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  return { mx, my, sxx, sxy, syy };
}

export function fitLine(x: ArrayLike<number>, y: ArrayLike<number>): LineFit {
  const n = x.length;
  const { mx, my, sxx, sxy, syy } = moments(x, y, n);
  const slope = sxx === 0 ? 0 : sxy / sxx;
  // A flat line (syy = 0, e.g. tau at q = 0) fits perfectly.
  const r2 = syy === 0 ? 1 : Math.min(1, (sxy * sxy) / (sxx * syy));
  const stderr = n > 2 && sxx > 0 ? Math.sqrt(Math.max(0, ((1 - r2) * syy) / sxx / (n - 2))) : null;
  return { slope, intercept: my - slope * mx, r2, stderr };
}

/** The slope through the first n points. */
export function slopeOf(x: ArrayLike<number>, y: ArrayLike<number>, n: number): number {
  const { sxx, sxy } = moments(x, y, n);
  return sxx === 0 ? 0 : sxy / sxx;
}
