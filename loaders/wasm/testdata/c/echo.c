/*
 * runtimetest.FixtureEcho as a C guest, plus faults for the loader's
 * tests. -DINIT_ERROR makes FixtureInitError, -DMISSING_ENTRY makes
 * FixtureMissingEntryPoint. Extra input ids:
 *   trap  __builtin_trap() (wasm unreachable)
 *   oob   read far outside linear memory
 *   loop  spin forever
 *   grow  memory.grow by the data's decimal value in MiB; an error if
 *         the runtime refuses
 *   ts    send output "ts" with the metadata timestamp as 8 bytes
 */
#include <string.h>
#include <stdio.h>

#include "dora_operator.h"

DORA_DEFINE_ALLOC()
DORA_DEFINE_ABI_VERSION()

static int inputs __attribute__((unused));

__attribute__((unused)) static int is(const char *id, uint32_t len, const char *want)
{
	return len == strlen(want) && memcmp(id, want, len) == 0;
}

int32_t dora_init(void)
{
#ifdef INIT_ERROR
	return dora_error("init failed on purpose");
#else
	return 0;
#endif
}

#ifndef MISSING_ENTRY
int32_t dora_on_event(uint32_t kind, const char *id, uint32_t id_len, const uint8_t *data, uint32_t data_len,
		      const uint8_t *meta, uint32_t meta_len)
{
	if (kind != DORA_EVENT_INPUT)
		return DORA_STATUS_CONTINUE;
	inputs++;
	if (is(id, id_len, "fail"))
		return dora_error("requested failure");
	if (is(id, id_len, "stop"))
		return DORA_STATUS_STOP;
	if (is(id, id_len, "stop_all"))
		return DORA_STATUS_STOP_ALL;
	if (is(id, id_len, "noop"))
		return DORA_STATUS_CONTINUE;
	if (is(id, id_len, "trap"))
		__builtin_trap();
	if (is(id, id_len, "oob"))
		return *(volatile uint8_t *)(uintptr_t)0xfffffff0u;
	if (is(id, id_len, "loop")) {
		for (volatile int i = 0;; i++)
			;
	}
	if (is(id, id_len, "grow")) {
		char num[16] = {0};
		memcpy(num, data, data_len < 15 ? data_len : 15);
		if (__builtin_wasm_memory_grow(0, atoi(num) * 16) == (size_t)-1)
			return dora_error("memory.grow refused");
		return DORA_STATUS_CONTINUE;
	}
	if (is(id, id_len, "ts")) {
		uint64_t t = dora_metadata_timestamp(meta, meta_len);
		return dora_send("ts", (const uint8_t *)&t, 8) == DORA_SEND_OK ? 0 : dora_error("send failed");
	}
	int32_t r;
	if (is(id, id_len, "count")) {
		char num[16];
		int n = snprintf(num, sizeof num, "%d", inputs);
		r = dora_send("count", (const uint8_t *)num, (uint32_t)n);
	} else {
		r = dora_send_output(id, id_len, data, data_len);
	}
	if (r != DORA_SEND_OK)
		return dora_error("send_output failed");
	return DORA_STATUS_CONTINUE;
}
#endif
