"""Unit tests for app.py, run natively under CPython (`make test`)."""

import unittest

from wit_world.exports import policy

import app


def candidate(id: int, price: float, healthy: bool = True) -> policy.Candidate:
    return policy.Candidate(
        id=id, provider=f"p{id}", model="m", healthy=healthy, cooldown_ms=0,
        remaining_requests=None, remaining_tokens=None, quota_used=None, in_flight=0,
        latency_ms=None, ttft_ms=None, error_rate=0.0, input_price=price, output_price=price,
        context_window=None, weight=1, tags=[])


class ByPrice(unittest.TestCase):
    def test_cheapest_ready_first_unhealthy_last(self):
        order = app.by_price([candidate(0, 3.0), candidate(1, 0.0, healthy=False), candidate(2, 1.0)])
        self.assertEqual(order, [2, 0, 1])

    def test_settings_must_be_empty(self):
        app.no_settings("{}")
        with self.assertRaises(ValueError):
            app.no_settings('{"max": 1}')


if __name__ == "__main__":
    unittest.main()
