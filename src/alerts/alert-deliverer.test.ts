import { describe, expect, it } from 'vitest';
import { defaultDeliveryPolicy, deliveryDelayMs } from './alert-deliverer.js';

describe('deliveryDelayMs', () => {
  it('doubles from the base, within +-25% jitter, and stops at the cap', () => {
    const p = defaultDeliveryPolicy;
    expect(deliveryDelayMs(1, p, () => 0.5)).toBe(10_000);
    expect(deliveryDelayMs(2, p, () => 0.5)).toBe(20_000);
    expect(deliveryDelayMs(5, p, () => 0.5)).toBe(160_000);
    expect(deliveryDelayMs(1, p, () => 0)).toBe(7_500);
    expect(deliveryDelayMs(1, p, () => 1)).toBe(12_500);
    expect(deliveryDelayMs(20, p, () => 0.5)).toBe(3_600_000);
    expect(deliveryDelayMs(10_000, p, () => 0.5)).toBe(3_600_000);
  });
});
