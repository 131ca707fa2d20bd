/* Prints the size and field offsets of every ABI struct, one per line:
 * "Type size N" and "Type.field offset N". */
#include "operator_api.h"

#include <stddef.h>
#include <stdio.h>

#define SIZE(T) printf(#T " size %zu\n", sizeof(T))
#define OFF(T, f) printf(#T "." #f " offset %zu\n", offsetof(T, f))

int main(void) {
    SIZE(Vec_uint8_t);
    OFF(Vec_uint8_t, ptr);
    OFF(Vec_uint8_t, len);
    OFF(Vec_uint8_t, cap);
    SIZE(DoraResult_t);
    OFF(DoraResult_t, error);
    SIZE(DoraInitResult_t);
    OFF(DoraInitResult_t, result);
    OFF(DoraInitResult_t, operator_context);
    SIZE(DoraStatus_t);
    SIZE(OnEventResult_t);
    OFF(OnEventResult_t, result);
    OFF(OnEventResult_t, status);
    SIZE(Metadata_t);
    OFF(Metadata_t, open_telemetry_context);
    SIZE(Input_t);
    OFF(Input_t, id);
    OFF(Input_t, data);
    OFF(Input_t, metadata);
    SIZE(RawEvent_t);
    OFF(RawEvent_t, input);
    OFF(RawEvent_t, input_closed);
    OFF(RawEvent_t, stop);
    OFF(RawEvent_t, error);
    SIZE(Output_t);
    OFF(Output_t, id);
    OFF(Output_t, data);
    OFF(Output_t, metadata);
    SIZE(ArcDynFn1_DoraResult_Output_t);
    OFF(ArcDynFn1_DoraResult_Output_t, env_ptr);
    OFF(ArcDynFn1_DoraResult_Output_t, call);
    OFF(ArcDynFn1_DoraResult_Output_t, release);
    OFF(ArcDynFn1_DoraResult_Output_t, retain);
    SIZE(SendOutput_t);
    OFF(SendOutput_t, send_output);
    return 0;
}
