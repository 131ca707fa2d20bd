// The C sink of the seed's C dataflow: prints and checks every counter
// message until its input closes.
#include <stdio.h>
#include <string.h>
#include "node_api.h"

int main(void)
{
	void *dora_context = init_dora_context_from_env();
	if (dora_context == NULL) {
		fprintf(stderr, "failed to init dora context\n");
		return 1;
	}
	int received = 0;
	for (;;) {
		void *event = dora_next_event(dora_context);
		if (event == NULL) {
			break;
		}
		enum DoraEventType ty = read_dora_event_type(event);
		if (ty == DoraEventType_Input) {
			char *data;
			size_t len;
			read_dora_input_data(event, &data, &len);
			const char *prefix = "The current counter value is ";
			if (len < strlen(prefix) || memcmp(data, prefix, strlen(prefix)) != 0) {
				fprintf(stderr, "[c sink] unexpected message: %.*s\n", (int)len, data);
				free_dora_event(event);
				free_dora_context(dora_context);
				return 1;
			}
			received++;
			printf("[c sink] received: %.*s\n", (int)len, data);
		} else if (ty == DoraEventType_InputClosed) {
			printf("[c sink] input closed\n");
		} else if (ty == DoraEventType_Stop) {
			printf("[c sink] received stop\n");
		}
		free_dora_event(event);
	}
	free_dora_context(dora_context);
	printf("[c sink] received %d messages\n", received);
	return received > 0 ? 0 : 1;
}
