/* kyufuctl: a QR code drawn in the terminal with UTF-8 half blocks (TOTP
 * enrollment shows the otpauth:// URI this way, once).
 *
 * Each text row holds two rows of modules: the upper one in the top half
 * of the cell, the lower in the bottom half ("▀", "▄", "█", " ").  As
 * `qrencode -t UTF8` does, ink is drawn for LIGHT modules, so on the usual
 * light-on-dark terminal the code reads dark-on-light as a phone expects;
 * a quiet zone of KYUFU_CTL_QR_QUIET_MODULES light modules surrounds it
 * (ISO/IEC 18004 asks for 4).  Error correction level M (15 %): the
 * common choice for a screen. */
#include <qrencode.h>
#include <string.h>

#include "ctl.h"

int ctl__qr_render(const char *text, FILE *out)
{
    if (text == NULL || text[0] == '\0') {
        return -1;
    }
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL) {
        return -1;
    }
    const int q = (int)KYUFU_CTL_QR_QUIET_MODULES;
    const int w = qr->width;
    const int total = w + 2 * q;
    /* dark(x, y) over the code with its quiet zone; the row below the
     * last (odd total) is light, as the quiet zone is. */
#define DARK(x, y)                                                           \
    ((x) >= q && (x) < q + w && (y) >= q && (y) < q + w &&                   \
     (qr->data[((y) - q) * w + ((x) - q)] & 1))
    for (int y = 0; y < total; y += 2) {
        for (int x = 0; x < total; x++) {
            bool top_light = !DARK(x, y);
            bool bottom_light = y + 1 < total ? !DARK(x, y + 1) : true;
            fputs(top_light && bottom_light ? "\u2588"
                  : top_light               ? "\u2580"
                  : bottom_light            ? "\u2584"
                                            : " ",
                  out);
        }
        fputc('\n', out);
    }
#undef DARK
    QRcode_free(qr);
    return 0;
}
