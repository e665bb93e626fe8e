/* Cortex-M entry: the board is initialised by the reset handler; serve until EXIT. */
#include "tinyc_protocol.h"

int main(void)
{
    tinyc_counter_init();
    return tinyc_server_run();
}
